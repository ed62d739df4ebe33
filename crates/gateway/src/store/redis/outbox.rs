//! The merchant events and their outbox in Redis.
//!
//! The transition's compare-and-set writes a checkout's events, their deliveries and its outbox
//! (`{chk_…}:evt`, `:dlv`, `:outbox`) in one script. Finding outboxes with due events needs one
//! key for all checkouts (`outbox-due`), which cannot share their hash tags; like the
//! reconciler's index it is a hint: announced before the transition with a time a little ahead
//! (so a writer that dies before delivering leaves its events findable), settled after each
//! delivery pass with a compare on the score the pass read (so that a pass never takes away an
//! entry a writer announced meanwhile).
//!
//! `GET /v1/events` pages the events through the same time-bucketed index as the checkouts'
//! listing ([`crate::store::timeline`]: families `evt` and `evt:type:<type>`), whose entries are
//! written by the announcement, sent together with the transition's compare-and-set; an entry
//! whose event was never written (the compare-and-set lost) is skipped by the reader.
//!
//! An event is stored without the checkout it shows while it is its checkout's newest: the
//! record holds exactly that checkout then ([`EventHead`]). The compare-and-set that moves the
//! record on splices the record it leaves into those events first (`scripts::COMPARE_AND_SET`),
//! and every read of events is a script that answers the record with them, so a reader always
//! sees each event with the checkout as it was right after its change. A pending checkout's
//! event then costs a few hundred bytes, not a second copy of the record (issue 12's memory
//! target).
//!
//! A refund's event is stored with what it shows, the refund and its checkout's currency
//! (`"object"`), and never gets the record spliced in: the record holds every refund, and
//! each refund makes events of its own, so a copy of the record per refund event grew a
//! checkout's events with the square of its refunds (issue 23). Events written before that
//! (a refund event with its `checkout`, or waiting for it) still read, through the refund in
//! that checkout.
//!
//! A payment method's events live in the same three keys under the payment
//! method's hash tag (`{pm_…}:evt`, `:dlv`, `:outbox`), written by the script that changes the
//! payment method (`redis/payment_methods.rs`), with what they show (`"object"`): the outbox
//! index names the payment method, and everything here reads and delivers them as a
//! checkout's, by the event id's owner ([`EventId::owner`]).

use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::timeline::{IndexWrite, RedisTimeline, run_grouped};
use super::{RedisStore, from_json, millis, to_json};
use crate::domain::checkout::{Checkout, CheckoutId};
use crate::domain::event::{Delivery, Event, EventId, EventObject, EventOwner, EventType};
use crate::domain::money::Currency;
use crate::domain::payment_method::PaymentMethod;
use crate::domain::refund::{Refund, RefundId};
use crate::domain::webhook_endpoint::{EndpointSnapshot, WebhookEndpointId};
use crate::store::keys;
use crate::store::timeline::{Direction, Entry, PageRequest};
use crate::store::{DeliveryTarget, EventOutbox, Leased, OutboxEntry, StoreError, StoredEvent};

/// KEYS: outbox, events, deliveries, checkout. ARGV: now ms, lease-until ms, limit.
/// Leases the due deliveries and answers `{earliest outbox time or false, checkout record,
/// member, event, delivery, fan-out, …}` (the record as [`READ`] answers it). A member is an
/// event id (its `webhooks.url` delivery, and its fan-out to the endpoints) or `<event
/// id>/<endpoint id>` (its delivery to that endpoint); fan-out is, for an event
/// id, `=` and the endpoints it went to (the `<event id>/` field of the deliveries) or `-`
/// when not yet, else ''. A member whose event is gone (it cannot outlive it, but if it did)
/// is dropped.
const LEASE: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {false, ''}
for _, member in ipairs(ids) do
  local slash = string.find(member, '/', 1, true)
  local id = member
  if slash then
    id = string.sub(member, 1, slash - 1)
  end
  local event = redis.call('HGET', KEYS[2], id)
  if event then
    redis.call('ZADD', KEYS[1], ARGV[2], member)
    answer_event(out, 2, KEYS[3], KEYS[4], member, event)
    if slash then
      table.insert(out, '')
    else
      local fanned = redis.call('HGET', KEYS[3], id .. '/')
      if fanned then
        table.insert(out, '=' .. fanned)
      else
        table.insert(out, '-')
      end
    end
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then
  out[1] = first[2]
end
return out
"#;

/// KEYS: events, deliveries, checkout. ARGV: event ids, or none for all the checkout's events.
/// Answers `{checkout record, id, event, delivery, …}`; the record is `version data` when an
/// answered event is stored without its checkout (it is then the record's newest), else ''.
/// One script, so that the record cannot move on between reading an event and the record.
const READ: &str = r#"
local out = {''}
if #ARGV == 0 then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    answer_event(out, 1, KEYS[2], KEYS[3], all[i], all[i + 1])
  end
else
  for _, id in ipairs(ARGV) do
    local event = redis.call('HGET', KEYS[1], id)
    if event then
      answer_event(out, 1, KEYS[2], KEYS[3], id, event)
    end
  end
end
return out
"#;

/// Adds `id, event, delivery` to `out`, and the record (`version data`) at `out[at]` when the
/// event is stored without its checkout and the record is not there yet ([`LEASE`], [`READ`]).
const ANSWER_EVENT: &str = r#"
local function answer_event(out, at, deliveries, checkout, id, event)
  table.insert(out, id)
  table.insert(out, event)
  table.insert(out, redis.call('HGET', deliveries, id) or '')
  if out[at] == '' and not string.find(event, '"checkout":', 1, true)
      and not string.find(event, '"object":', 1, true)
      and not string.find(event, '"endpoint":', 1, true) then
    local record = redis.call('HMGET', checkout, 'version', 'data')
    out[at] = (record[1] or '') .. ' ' .. (record[2] or '')
  end
end
"#;

/// KEYS: outbox, deliveries. ARGV: member (an event id, or `<event id>/<endpoint id>`),
/// delivery JSON, next due ms or '' (out of the outbox). Keeps the deliveries' TTL (the checkout's) and gives the outbox the same one.
/// Answers the earliest outbox time afterwards, or false when the outbox is empty; -1 when the
/// deliveries are gone (the checkout expired).
const SAVE_DELIVERY: &str = r#"
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 then
  return -1
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return first[2] or false
"#;

/// KEYS: outbox-due. ARGV: checkout id, seen score or '', next due ms or '', ttl ms.
/// With a seen score, nothing changes unless the entry still has it. Without one (the writer's
/// own pass), an entry that is due earlier than `next` is kept.
const SETTLE: &str = r#"
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  if not current or tonumber(current) ~= tonumber(ARGV[2]) then
    return 0
  end
  if ARGV[3] == '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
    return 1
  end
elseif ARGV[3] == '' or (current and tonumber(current) <= tonumber(ARGV[3])) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#;

/// KEYS: events, deliveries, outbox. ARGV: event id, expected delivery JSON or '', new delivery
/// JSON, due ms. Answers 1 when queued, 0 when there is no such event, -1 when the delivery
/// changed since it was read (read again and retry).
const REDELIVER: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if (redis.call('HGET', KEYS[2], ARGV[1]) or '') ~= ARGV[2] then
  return -1
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return 1
"#;

/// KEYS: outbox, deliveries, events. ARGV: event id, endpoint ids (space-separated, maybe
/// none), the new deliveries' JSON, lease-until ms, '1' to keep the event's own member (its
/// `webhooks.url` delivery) or '0'. Fans the event out once: answers `{1}` when
/// this call did, `{0}` when it had been done (or the event is gone).
const FAN_OUT: &str = r#"
local marker = ARGV[1] .. '/'
if ARGV[5] == '0' then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
if redis.call('HEXISTS', KEYS[2], marker) == 1 or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  return {0}
end
redis.call('HSET', KEYS[2], marker, ARGV[2])
for endpoint in string.gmatch(ARGV[2], '%S+') do
  redis.call('HSET', KEYS[2], marker .. endpoint, ARGV[3])
  redis.call('ZADD', KEYS[1], ARGV[4], marker .. endpoint)
end
local ttl = redis.call('PTTL', KEYS[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1}
"#;

/// KEYS: deliveries. ARGV: event id. Answers `{endpoint id, delivery JSON, …}` for every
/// endpoint the event was fanned out to.
const ENDPOINT_DELIVERIES: &str = r#"
local out = {}
local fanned = redis.call('HGET', KEYS[1], ARGV[1] .. '/')
if not fanned then
  return out
end
for endpoint in string.gmatch(fanned, '%S+') do
  table.insert(out, endpoint)
  table.insert(out, redis.call('HGET', KEYS[1], ARGV[1] .. '/' .. endpoint) or '')
end
return out
"#;

/// KEYS: events, deliveries, outbox. ARGV: event id, endpoint id, expected delivery JSON or
/// '', new delivery JSON, due ms. As [`REDELIVER`], for one endpoint's delivery, adding the
/// endpoint to the event's fan-out when it was not there.
const REDELIVER_TO_ENDPOINT: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local member = ARGV[1] .. '/' .. ARGV[2]
if (redis.call('HGET', KEYS[2], member) or '') ~= ARGV[3] then
  return -1
end
local ttl = redis.call('PTTL', KEYS[1])
local fanned = redis.call('HGET', KEYS[2], ARGV[1] .. '/') or ''
if not string.find(' ' .. fanned .. ' ', ' ' .. ARGV[2] .. ' ', 1, true) then
  if fanned == '' then
    fanned = ARGV[2]
  else
    fanned = fanned .. ' ' .. ARGV[2]
  end
  redis.call('HSET', KEYS[2], ARGV[1] .. '/', fanned)
end
redis.call('HSET', KEYS[2], member, ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], member)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return 1
"#;

/// KEYS: checkout, events, deliveries, outbox. ARGV: id prefix (`evt_`, the checkout's hex
/// and version 0), event JSON, delivery JSON or '', due ms. Stores the event at the first free
/// position beside the checkout, queued, with the checkout's TTL; answers the position, -1
/// when the checkout is gone, -2 when all positions are taken.
const ADD_EVENT: &str = r#"
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  return -1
end
for position = 0, 255 do
  local id = ARGV[1] .. string.format('%02x', position)
  if redis.call('HSETNX', KEYS[2], id, ARGV[2]) == 1 then
    if ARGV[3] ~= '' then
      redis.call('HSET', KEYS[3], id, ARGV[3])
    end
    redis.call('ZADD', KEYS[4], ARGV[4], id)
    for k = 2, 4 do
      redis.call('PEXPIRE', KEYS[k], ttl)
    end
    return position
  end
end
return -2
"#;

pub(super) struct OutboxScripts {
    add_event: Script,
    lease: Script,
    read: Script,
    save_delivery: Script,
    settle: Script,
    redeliver: Script,
    fan_out: Script,
    endpoint_deliveries: Script,
    redeliver_to_endpoint: Script,
}

impl OutboxScripts {
    pub fn new() -> Self {
        Self {
            add_event: Script::new(ADD_EVENT),
            lease: Script::new(&format!("{ANSWER_EVENT}{LEASE}")),
            read: Script::new(&format!("{ANSWER_EVENT}{READ}")),
            save_delivery: Script::new(SAVE_DELIVERY),
            settle: Script::new(SETTLE),
            redeliver: Script::new(REDELIVER),
            fan_out: Script::new(FAN_OUT),
            endpoint_deliveries: Script::new(ENDPOINT_DELIVERIES),
            redeliver_to_endpoint: Script::new(REDELIVER_TO_ENDPOINT),
        }
    }
}

/// A delivery's member in the outbox and its field in the deliveries: the event id for
/// `webhooks.url`, `<event id>/<endpoint id>` for an endpoint.
fn member(id: &EventId, target: &DeliveryTarget) -> String {
    match target {
        DeliveryTarget::Url => id.as_str().to_owned(),
        DeliveryTarget::Endpoint(endpoint) => [id.as_str(), "/", endpoint.as_str()].concat(),
    }
}

/// The endpoint ids of a fan-out field.
fn fanned_ids(raw: &str) -> Vec<WebhookEndpointId> {
    raw.split_whitespace()
        .filter_map(|id| WebhookEndpointId::parse(id).ok())
        .collect()
}

/// A Redis score (sent as a string, possibly with a fraction) as whole milliseconds.
fn score_ms(raw: &str) -> Result<i64, StoreError> {
    raw.parse::<f64>()
        .map(|f| f as i64)
        .map_err(|_| StoreError::corrupt(format!("outbox score {raw:?} is not a number")))
}

/// A merchant event as the compare-and-set writes it, without its id, which is its field's
/// name: a checkout's event without the checkout, which is the record written in the same
/// script (see the module's doc); a refund's with the refund and the checkout's currency.
#[derive(Serialize)]
pub(super) struct EventHead<'a> {
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(with = "crate::domain::time::rfc3339")]
    created_at: DateTime<Utc>,
    previous_status: &'a Option<String>,
    /// The refund's id, as events written before `object` have it.
    #[serde(skip_serializing_if = "Option::is_none")]
    refund: Option<&'a RefundId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<Currency>,
    /// The refund (or dispute): its presence keeps the record from being spliced in
    /// (`"object":`, see `scripts::COMPARE_AND_SET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<HeadObject<'a>>,
    /// A `webhook_endpoint.*` event's endpoint: its presence keeps the record from being
    /// spliced in too (`"endpoint":`, see [`ANSWER_EVENT`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<&'a EndpointSnapshot>,
}

/// What a refund's or a dispute's event carries as `object`; its `type` says which.
#[derive(Serialize)]
#[serde(untagged)]
enum HeadObject<'a> {
    Refund(&'a Refund),
    Dispute(&'a crate::domain::dispute::Dispute),
    PaymentMethod(&'a PaymentMethod),
}

impl<'a> EventHead<'a> {
    pub(super) fn of(event: &'a Event) -> Self {
        let (refund, currency, object, endpoint) = match &event.object {
            EventObject::Checkout(_) => (None, None, None, None),
            EventObject::Refund {
                currency, refund, ..
            } => (
                Some(&refund.id),
                Some(*currency),
                Some(HeadObject::Refund(refund)),
                None,
            ),
            EventObject::Dispute {
                currency, dispute, ..
            } => (
                None,
                Some(*currency),
                Some(HeadObject::Dispute(dispute)),
                None,
            ),
            EventObject::WebhookEndpoint { endpoint, .. } => (None, None, None, Some(&**endpoint)),
            EventObject::PaymentMethod(method) => {
                (None, None, Some(HeadObject::PaymentMethod(method)), None)
            }
        };
        Self {
            kind: event.kind,
            created_at: event.created_at,
            previous_status: &event.previous_status,
            refund,
            currency,
            object,
            endpoint,
        }
    }
}

/// A merchant event as read. A checkout's: with its checkout once a later compare-and-set has
/// spliced it in (or when an older version of this code wrote it whole), without it while it
/// is the newest. A refund's: with its refund (`object`), or, written before that, as a
/// checkout's, with `refund` naming the refund in it.
#[derive(Deserialize)]
struct EventRead {
    #[serde(rename = "type")]
    kind: EventType,
    created_at: DateTime<Utc>,
    previous_status: Option<String>,
    checkout: Option<Box<Checkout>>,
    #[serde(default)]
    refund: Option<RefundId>,
    #[serde(default)]
    currency: Option<Currency>,
    /// A refund, or a dispute for a `dispute.*` event.
    #[serde(default)]
    object: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    endpoint: Option<Box<EndpointSnapshot>>,
}

/// The answer of [`READ`] after its first `skip` items: the record (`version data`, or '' when
/// no event needs it), then `id, event, delivery` triples.
fn stored_events(raw: Vec<Option<String>>, skip: usize) -> Result<Vec<StoredEvent>, StoreError> {
    Ok(decoded_events(raw, skip, 3)?
        .into_iter()
        .map(|(stored, _)| stored)
        .collect())
}

/// The answer of [`LEASE`]: as [`stored_events`], with `member, event, delivery, fan-out`.
fn leased_events(raw: Vec<Option<String>>) -> Result<Vec<Leased>, StoreError> {
    decoded_events(raw, 1, 4)?
        .into_iter()
        .map(|(stored, rest)| {
            let member = rest.first().map(String::as_str).unwrap_or_default();
            let target = match member.split_once('/') {
                None => DeliveryTarget::Url,
                Some((_, endpoint)) => {
                    DeliveryTarget::Endpoint(WebhookEndpointId::parse(endpoint).map_err(|_| {
                        StoreError::corrupt(format!("outbox member {member:?} names no endpoint"))
                    })?)
                }
            };
            let fanned_out = rest
                .get(1)
                .and_then(|f| f.strip_prefix('='))
                .map(fanned_ids);
            Ok(Leased {
                event: stored.event,
                target,
                delivery: stored.delivery,
                fanned_out,
            })
        })
        .collect()
}

/// The record, then chunks of `width`: `member, event, delivery, …`; answers each event with
/// the chunk's member and the items after the delivery.
fn decoded_events(
    raw: Vec<Option<String>>,
    skip: usize,
    width: usize,
) -> Result<Vec<(StoredEvent, Vec<String>)>, StoreError> {
    let mut raw = raw.into_iter().skip(skip).map(Option::unwrap_or_default);
    let record = raw.next().unwrap_or_default();
    let rest: Vec<String> = raw.collect();
    // Parsed once, for the events stored without their checkout: the record is their checkout.
    let mut newest: Option<(u32, Box<Checkout>)> = None;
    if let Some((version, data)) = record.split_once(' ') {
        let version: u64 = version.parse().map_err(|_| {
            StoreError::corrupt(format!("checkout version {version:?} is not a number"))
        })?;
        newest = Some(((version & 0xffff_ffff) as u32, from_json("checkout", data)?));
    }
    rest.chunks_exact(width)
        .map(|c| {
            let event_id = c[0].split_once('/').map_or(c[0].as_str(), |(id, _)| id);
            let id = EventId::parse(event_id)
                .map_err(|e| StoreError::corrupt(format!("stored event id {:?}: {e}", c[0])))?;
            let read: EventRead = from_json("merchant event", &c[1])?;
            let object = match (read.object, read.currency, read.endpoint) {
                (Some(raw), _, None) if matches!(read.kind, EventType::PaymentMethod(_)) => {
                    EventObject::PaymentMethod(from_json(
                        "payment method of a merchant event",
                        raw.get(),
                    )?)
                }
                (_, _, Some(endpoint)) => EventObject::WebhookEndpoint {
                    checkout: id.checkout_id(),
                    endpoint,
                },
                (Some(raw), Some(currency), None) => match read.kind {
                    EventType::Dispute(_) => EventObject::Dispute {
                        checkout: id.checkout_id(),
                        currency,
                        dispute: from_json("dispute of a merchant event", raw.get())?,
                    },
                    _ => EventObject::Refund {
                        checkout: id.checkout_id(),
                        currency,
                        refund: from_json("refund of a merchant event", raw.get())?,
                    },
                },
                _ => {
                    let checkout = match (read.checkout, &newest) {
                        (Some(checkout), _) => checkout,
                        (None, Some((version, checkout)))
                            if *version == id.version_low_bits() =>
                        {
                            checkout.clone()
                        }
                        (None, _) => {
                            return Err(StoreError::corrupt(format!(
                                "merchant event {id} has no checkout and is not its checkout's newest"
                            )));
                        }
                    };
                    match &read.refund {
                        None => EventObject::Checkout(checkout),
                        Some(refund) => EventObject::Refund {
                            refund: Box::new(checkout.refund(refund).cloned().ok_or_else(
                                || {
                                    StoreError::corrupt(format!(
                                        "merchant event {id} names refund {refund}, which its checkout does not hold"
                                    ))
                                },
                            )?),
                            checkout: checkout.id,
                            currency: checkout.currency,
                        },
                    }
                }
            };
            let stored = StoredEvent {
                event: Event {
                    id,
                    kind: read.kind,
                    created_at: read.created_at,
                    previous_status: read.previous_status,
                    object,
                },
                delivery: if c[2].is_empty() {
                    None
                } else {
                    Some(from_json("delivery", &c[2])?)
                },
            };
            let mut rest = vec![c[0].clone()];
            rest.extend(c[3..].iter().cloned());
            Ok((stored, rest))
        })
        .collect()
}

impl RedisStore {
    /// The writes that announce a transition's events (their listing entries and, when they
    /// are queued for delivery, the outbox index entry at `announce_at`), for a single Redis
    /// node to run inside the transition's own script, so that they are written with it.
    pub(super) fn announcement_writes(
        &self,
        id: &CheckoutId,
        events: &[Event],
        announce_at: Option<DateTime<Utc>>,
    ) -> Vec<IndexWrite> {
        let mut writes = self.events_index_writes(events);
        if let (Some(at), false) = (announce_at, events.is_empty()) {
            writes.push(IndexWrite::Add {
                key: self.keys.outbox_due(),
                score: at.timestamp_millis(),
                member: id.as_str().to_owned(),
                ttl_ms: millis(self.ttls.retention),
            });
        }
        writes
    }

    /// The events index entries of `events`: for each, in the family of every event and in its
    /// type's (a family is one hash slot).
    fn events_index_writes(&self, events: &[Event]) -> Vec<IndexWrite> {
        let timeline = self.events_timeline();
        events
            .iter()
            .flat_map(|e| {
                let entry = Entry {
                    at_ms: e.created_at.timestamp_millis(),
                    member: e.id.as_str().to_owned(),
                };
                [keys::all_events(), keys::events_of_type(e.kind)]
                    .map(|family| timeline.add(&family, &entry))
            })
            .collect()
    }

    /// The events index's families (for `GET /v1/events`), kept like the checkouts' listing.
    fn events_timeline(&self) -> RedisTimeline<'_> {
        RedisTimeline::new(
            &self.keys,
            self.ttls
                .retention
                .saturating_add(Duration::from_secs(86_400)),
        )
    }

    pub(super) async fn outbox_announce(
        &self,
        id: &EventOwner,
        due: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run("announce_outbox", || {
                let mut conn = self.conn();
                async move {
                    // ZADD and its TTL together: the reconciler index's script, on this index.
                    self.scripts
                        .schedule
                        .key(self.keys.outbox_due())
                        .arg(due.timestamp_millis())
                        .arg(id.as_str())
                        .arg(millis(self.ttls.retention))
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(())
    }

    /// One of `checkout`'s (or payment method's) events, or all of them, with their deliveries
    /// ([`READ`]).
    async fn read_events(
        &self,
        checkout: &EventOwner,
        one: Option<&EventId>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let raw: Vec<Option<String>> = self
            .run("events_of_checkout", || {
                let mut conn = self.conn();
                async move {
                    let mut call = self.outbox_scripts.read.prepare_invoke();
                    call.key(self.keys.event_records(checkout))
                        .key(self.keys.deliveries(checkout))
                        .key(self.keys.event_owner_record(checkout));
                    if let Some(id) = one {
                        call.arg(id.as_str());
                    }
                    call.invoke_async(&mut conn).await
                }
            })
            .await?;
        stored_events(raw, 0)
    }
}

#[async_trait]
impl EventOutbox for RedisStore {
    async fn announce_events(
        &self,
        id: &EventOwner,
        events: &[Event],
        deliver_due: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let groups = &self.events_index_writes(events);
        let index = async {
            if groups.is_empty() {
                return Ok(());
            }
            self.run("announce_events", || {
                let conn = self.conn();
                async move { run_grouped(&conn, groups).await }
            })
            .await
        };
        // Sent together over the multiplexed connection: one round trip's wait, and each key
        // on its own node in a cluster.
        let announce = async {
            match deliver_due {
                Some(due) => self.outbox_announce(id, due).await,
                None => Ok(()),
            }
        };
        let (indexed, announced) = futures_util::future::join(index, announce).await;
        indexed?;
        announced
    }

    async fn recent_events(
        &self,
        kind: Option<EventType>,
        before: Option<(DateTime<Utc>, &EventId)>,
        (oldest, newest): (DateTime<Utc>, DateTime<Utc>),
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let family = kind.map_or_else(keys::all_events, keys::events_of_type);
        let timeline = &self.events_timeline();
        let mut after = before.map(|(at, id)| Entry {
            at_ms: at.timestamp_millis(),
            member: id.as_str().to_owned(),
        });
        let mut found: Vec<StoredEvent> = Vec::new();
        while found.len() < limit {
            let want = limit - found.len();
            let req = &PageRequest {
                family: &family,
                from_ms: oldest.timestamp_millis(),
                // A day past now: another instance's clock may run a little ahead.
                until_ms: newest.timestamp_millis() + 86_400_000,
                after: after.as_ref(),
                direction: Direction::Older,
                limit: want,
            };
            let entries = self
                .run("recent_events", || {
                    let mut conn = self.conn();
                    async move { timeline.page(&mut conn, req).await }
                })
                .await?;
            let ids: Vec<EventId> = entries
                .iter()
                .filter_map(|e| EventId::parse(&e.member).ok())
                .collect();
            let reads = ids.iter().map(|id| self.event(id));
            for event in futures_util::future::join_all(reads).await {
                // An entry whose event was never written (its compare-and-set lost) is skipped.
                if let Some(e) = event? {
                    found.push(e);
                }
            }
            if entries.len() < want {
                break;
            }
            after = entries.last().cloned();
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn due_outboxes(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = &self.keys.outbox_due();
        let raw: Vec<(String, String)> = self
            .run("due_outboxes", || {
                let mut conn = self.conn();
                async move {
                    ::redis::cmd("ZRANGEBYSCORE")
                        .arg(key)
                        .arg("-inf")
                        .arg(now.timestamp_millis())
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let mut due = Vec::with_capacity(raw.len());
        let mut junk = Vec::new();
        for (member, score) in raw {
            match (EventOwner::parse(&member), score_ms(&score)) {
                (Some(owner), Ok(due_ms)) => due.push(OutboxEntry { owner, due_ms }),
                _ => junk.push(member),
            }
        }
        self.drop_malformed("due_outboxes", key, &junk).await?;
        Ok(due)
    }

    async fn lease_due_events(
        &self,
        id: &EventOwner,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<(Vec<Leased>, Option<i64>), StoreError> {
        // Sent again after a broken connection, a first run that did lease leaves its events
        // leased: they go out when the lease is over, later but never twice.
        let raw: Vec<Option<String>> = self
            .run("lease_due_events", || {
                let mut conn = self.conn();
                async move {
                    self.outbox_scripts
                        .lease
                        .key(self.keys.outbox(id))
                        .key(self.keys.event_records(id))
                        .key(self.keys.deliveries(id))
                        .key(self.keys.event_owner_record(id))
                        .arg(now.timestamp_millis())
                        .arg(lease_until.timestamp_millis())
                        .arg(limit)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        let earliest = raw
            .first()
            .cloned()
            .flatten()
            .map(|s| score_ms(&s))
            .transpose()?;
        Ok((leased_events(raw)?, earliest))
    }

    async fn save_target_delivery(
        &self,
        id: &EventId,
        target: &DeliveryTarget,
        delivery: &Delivery,
    ) -> Result<Option<i64>, StoreError> {
        let checkout = &id.owner();
        let member = &member(id, target);
        let json = &to_json("delivery", delivery)?;
        let due = &delivery
            .next_attempt_at
            .map(|t| t.timestamp_millis().to_string())
            .unwrap_or_default();
        let earliest: Option<String> = self
            .run("save_delivery", || {
                let mut conn = self.conn();
                async move {
                    self.outbox_scripts
                        .save_delivery
                        .key(self.keys.outbox(checkout))
                        .key(self.keys.deliveries(checkout))
                        .arg(member)
                        .arg(json)
                        .arg(due)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        match earliest.as_deref() {
            None | Some("-1") => Ok(None),
            Some(score) => score_ms(score).map(Some),
        }
    }

    async fn settle_outbox(
        &self,
        id: &EventOwner,
        seen: Option<i64>,
        next_due: Option<i64>,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run("settle_outbox", || {
                let mut conn = self.conn();
                async move {
                    self.outbox_scripts
                        .settle
                        .key(self.keys.outbox_due())
                        .arg(id.as_str())
                        .arg(seen.map(|s| s.to_string()).unwrap_or_default())
                        .arg(next_due.map(|s| s.to_string()).unwrap_or_default())
                        .arg(millis(self.ttls.retention))
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(())
    }

    async fn event(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .read_events(&id.owner(), Some(id))
            .await?
            .into_iter()
            .next())
    }

    async fn checkout_events(&self, id: &CheckoutId) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = self.read_events(&EventOwner::from(id), None).await?;
        out.sort_by(|a, b| b.event.id.cmp(&a.event.id));
        Ok(out)
    }

    async fn redeliver(
        &self,
        id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        // A delivery attempt may save its result between our read and our write: the script
        // compares, and we read again (a few times at most: attempts are seconds apart).
        for _ in 0..5 {
            let Some(stored) = self.event(id).await? else {
                return Ok(None);
            };
            let (before, delivery, after) = &redelivery(stored.delivery, now)?;
            let checkout = &id.owner();
            let outcome: i64 = self
                .run("redeliver", || {
                    let mut conn = self.conn();
                    async move {
                        self.outbox_scripts
                            .redeliver
                            .key(self.keys.event_records(checkout))
                            .key(self.keys.deliveries(checkout))
                            .key(self.keys.outbox(checkout))
                            .arg(id.as_str())
                            .arg(before)
                            .arg(after)
                            .arg(now.timestamp_millis())
                            .invoke_async(&mut conn)
                            .await
                    }
                })
                .await?;
            match outcome {
                1 => {
                    self.outbox_announce(checkout, now).await?;
                    return Ok(Some(delivery.clone()));
                }
                0 => return Ok(None),
                _ => continue,
            }
        }
        Err(StoreError::unavailable(
            "redeliver: the event's delivery kept changing; try again in a few seconds",
        ))
    }

    async fn fan_out(
        &self,
        id: &EventId,
        endpoints: &[WebhookEndpointId],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        keep_url: bool,
    ) -> Result<Vec<WebhookEndpointId>, StoreError> {
        let checkout = &id.owner();
        let ids = &endpoints
            .iter()
            .map(WebhookEndpointId::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let json = &to_json("delivery", &Delivery::due_now(now))?;
        // Sent again after a broken connection, a first run that fanned out answers `{0}`: its
        // deliveries are queued (leased) and go out when the lease is over, later but once.
        let done: Vec<i64> = self
            .run("fan_out", || {
                let mut conn = self.conn();
                async move {
                    self.outbox_scripts
                        .fan_out
                        .key(self.keys.outbox(checkout))
                        .key(self.keys.deliveries(checkout))
                        .key(self.keys.event_records(checkout))
                        .arg(id.as_str())
                        .arg(ids)
                        .arg(json)
                        .arg(lease_until.timestamp_millis())
                        .arg(if keep_url { "1" } else { "0" })
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(if done.first() == Some(&1) {
            endpoints.to_vec()
        } else {
            Vec::new()
        })
    }

    async fn add_event(
        &self,
        event: &Event,
        to_url: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError> {
        let checkout = &event.id.checkout_id();
        let prefix = &format!("{}00000000", EventId::checkout_prefix(checkout));
        let json = &to_json("merchant event", &EventHead::of(event))?;
        let delivery = &if to_url {
            to_json("delivery", &Delivery::due_now(now))?
        } else {
            String::new()
        };
        let position: i64 = self
            .run("add_event", || {
                let mut conn = self.conn();
                async move {
                    self.outbox_scripts
                        .add_event
                        .key(self.keys.checkout(checkout))
                        .key(self.keys.event_records(checkout))
                        .key(self.keys.deliveries(checkout))
                        .key(self.keys.outbox(checkout))
                        .arg(prefix)
                        .arg(json)
                        .arg(delivery)
                        .arg(now.timestamp_millis())
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        let Ok(position) = u8::try_from(position) else {
            return Ok(None);
        };
        let stored = Event {
            id: EventId::new(checkout, 0, position),
            ..event.clone()
        };
        self.announce_events(&checkout.into(), std::slice::from_ref(&stored), Some(now))
            .await?;
        Ok(Some(stored))
    }

    async fn endpoint_deliveries(
        &self,
        id: &EventId,
    ) -> Result<Vec<(WebhookEndpointId, Delivery)>, StoreError> {
        let checkout = &id.owner();
        let raw: Vec<String> = self
            .run("endpoint_deliveries", || {
                let mut conn = self.conn();
                async move {
                    self.outbox_scripts
                        .endpoint_deliveries
                        .key(self.keys.deliveries(checkout))
                        .arg(id.as_str())
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await?;
        raw.chunks_exact(2)
            .filter(|c| !c[1].is_empty())
            .map(|c| {
                let endpoint = WebhookEndpointId::parse(&c[0]).map_err(|_| {
                    StoreError::corrupt(format!("fan-out of {id} names {:?}", c[0]))
                })?;
                Ok((endpoint, from_json("delivery", &c[1])?))
            })
            .collect()
    }

    async fn redeliver_to_endpoint(
        &self,
        id: &EventId,
        endpoint: &WebhookEndpointId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let checkout = &id.owner();
        for _ in 0..5 {
            if self.event(id).await?.is_none() {
                return Ok(None);
            }
            let current = self
                .endpoint_deliveries(id)
                .await?
                .into_iter()
                .find(|(e, _)| e == endpoint)
                .map(|(_, d)| d);
            let (before, delivery, after) = &redelivery(current, now)?;
            let outcome: i64 = self
                .run("redeliver_to_endpoint", || {
                    let mut conn = self.conn();
                    async move {
                        self.outbox_scripts
                            .redeliver_to_endpoint
                            .key(self.keys.event_records(checkout))
                            .key(self.keys.deliveries(checkout))
                            .key(self.keys.outbox(checkout))
                            .arg(id.as_str())
                            .arg(endpoint.as_str())
                            .arg(before)
                            .arg(after)
                            .arg(now.timestamp_millis())
                            .invoke_async(&mut conn)
                            .await
                    }
                })
                .await?;
            match outcome {
                1 => {
                    self.outbox_announce(checkout, now).await?;
                    return Ok(Some(delivery.clone()));
                }
                0 => return Ok(None),
                _ => continue,
            }
        }
        Err(StoreError::unavailable(
            "redeliver: the event's delivery kept changing; try again in a few seconds",
        ))
    }

    async fn outbox_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let key = &self.keys.outbox_due();
        let (size, first): (u64, Vec<(String, String)>) = self
            .run("outbox_backlog", || {
                let mut conn = self.conn();
                async move {
                    ::redis::pipe()
                        .zcard(key)
                        .zrange_withscores(key, 0, 0)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let earliest = first
            .first()
            .map(|(_, score)| score_ms(score))
            .transpose()?;
        Ok((size, earliest))
    }
}

/// A delivery asked for again at `now`: its JSON as stored (empty when there was none, which the
/// redeliver scripts compare with), the delivery due now, and that delivery's JSON.
fn redelivery(
    current: Option<Delivery>,
    now: DateTime<Utc>,
) -> Result<(String, Delivery, String), StoreError> {
    let before = current
        .as_ref()
        .map(|d| to_json("delivery", d))
        .transpose()?
        .unwrap_or_default();
    let mut delivery = current.unwrap_or_else(|| Delivery::due_now(now));
    delivery.redeliver(now);
    let after = to_json("delivery", &delivery)?;
    Ok((before, delivery, after))
}
