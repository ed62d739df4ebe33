//! [`PaymentMethods`] on Redis: each change of a payment method and its event are one Lua
//! script on the payment method's hash slot (`{pm_…}`): the history entry (`:pmevt`) and the
//! merchant event with its delivery and outbox entry (`:evt`, `:dlv`, `:outbox`, read and
//! delivered by `redis/outbox.rs` like a checkout's), announced just before the script as a
//! checkout's events are. The customer index (its own slot) is written after the save, as a
//! hint the reader re-checks.

use ::redis::{AsyncCommands, Script};
use async_trait::async_trait;

use super::outbox::EventHead;
use super::{RedisStore, to_json as store_json};
use crate::domain::event::{Delivery, Event};
use crate::domain::payment_method::{
    CustomerReference, MspToken, PaymentMethod, PaymentMethodEvent, PaymentMethodId,
    StoredPaymentMethod,
};
use crate::store::{EventOutbox, Outbox, PaymentMethodPage, PaymentMethods, StoreError};

/// Writes a change's merchant event: KEYS[3..5] its events, deliveries and outbox; ARGV[5..8]
/// the event id, its JSON, its `webhooks.url` delivery JSON or '', when it is due (ms) or ''
/// (not queued); every key expires with the payment method (ARGV[4]).
const WRITE_EVENT: &str = r#"
local function write_event()
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
  end
  if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[4], ARGV[5], ARGV[7])
  end
  if ARGV[8] ~= '' then
    redis.call('ZADD', KEYS[5], ARGV[8], ARGV[5])
  end
  for k = 1, 5 do
    redis.call('EXPIREAT', KEYS[k], ARGV[4])
  end
end
"#;

/// KEYS: payment method, its history, its events, deliveries, outbox. ARGV: data JSON, token,
/// history entry JSON, expiry (unix s), then [`WRITE_EVENT`]'s. Returns the stored `{data,
/// token, version}`: what it wrote, or what was there already.
const SAVE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HMGET', KEYS[1], 'data', 'token', 'version')
end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'token', ARGV[2], 'version', 1)
redis.call('DEL', KEYS[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
write_event()
return {ARGV[1], ARGV[2], '1'}
"#;

/// KEYS: as [`SAVE`]'s. ARGV: expected version, data JSON, history entry JSON, expiry, then
/// [`WRITE_EVENT`]'s. Returns 1 when written, 0 when the version differs (or it is gone).
const UPDATE: &str = r#"
local v = redis.call('HGET', KEYS[1], 'version')
if not v or tonumber(v) ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'version', tonumber(ARGV[1]) + 1)
redis.call('RPUSH', KEYS[2], ARGV[3])
write_event()
return 1
"#;

/// The merchant event's part of [`SAVE`]'s and [`UPDATE`]'s arguments: id, JSON, `webhooks.url`
/// delivery or '', due ms or ''.
struct EventArgs {
    id: String,
    json: String,
    delivery: String,
    due: String,
}

impl EventArgs {
    fn of(event: &Event, outbox: &Outbox<'_>) -> Result<Self, StoreError> {
        let queued = outbox.deliver_at;
        Ok(Self {
            id: event.id.as_str().to_owned(),
            json: store_json("merchant event", &EventHead::of(event))?,
            delivery: match queued {
                Some(at) if outbox.to_url => store_json("delivery", &Delivery::due_now(at))?,
                _ => String::new(),
            },
            due: queued
                .map(|at| at.timestamp_millis().to_string())
                .unwrap_or_default(),
        })
    }
}

/// KEYS: a customer's index. ARGV: payment method id, its expiry (unix s). Members all score
/// 0, so they sort by id (UUID v7: by creation); the index lives as long as its newest member.
const INDEX: &str = r#"
redis.call('ZADD', KEYS[1], 0, ARGV[1])
local ttl = redis.call('TTL', KEYS[1])
local now = tonumber(redis.call('TIME')[1])
if ttl < 0 or now + ttl < tonumber(ARGV[2]) then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
return 1
"#;

impl RedisStore {
    /// The change's merchant event (the one of `outbox`), announced as a checkout's are
    /// (listed, and in the outbox index when queued) before the script that writes it.
    async fn announce_payment_method_event(
        &self,
        method: &PaymentMethod,
        outbox: &Outbox<'_>,
    ) -> Result<Option<EventArgs>, StoreError> {
        let Some(event) = outbox.events.first() else {
            return Ok(None);
        };
        self.announce_events(&(&method.id).into(), outbox.events, outbox.announce_at)
            .await?;
        EventArgs::of(event, outbox).map(Some)
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::corrupt(format!("cannot serialise a payment method: {e}")))
}

fn stored(
    data: Option<String>,
    token: Option<String>,
    version: Option<u64>,
) -> Result<Option<StoredPaymentMethod>, StoreError> {
    let (Some(data), Some(token), Some(version)) = (data, token, version) else {
        return Ok(None);
    };
    let method: PaymentMethod = serde_json::from_str(&data)
        .map_err(|e| StoreError::corrupt(format!("a stored payment method is unreadable: {e}")))?;
    let token = MspToken::new(token)
        .ok_or_else(|| StoreError::corrupt("a stored payment method has no token"))?;
    Ok(Some(StoredPaymentMethod {
        method,
        token,
        version,
    }))
}

/// [`WRITE_EVENT`]'s arguments: the merchant event's, or empty ones that write none.
fn event_args(call: &mut ::redis::ScriptInvocation<'_>, event: Option<&EventArgs>) {
    match event {
        Some(e) => {
            call.arg(&e.id).arg(&e.json).arg(&e.delivery).arg(&e.due);
        }
        None => {
            call.arg("").arg("").arg("").arg("");
        }
    }
}

#[async_trait]
impl PaymentMethods for RedisStore {
    async fn save_payment_method(
        &self,
        method: &PaymentMethod,
        token: &MspToken,
        event: &PaymentMethodEvent,
        outbox: Outbox<'_>,
    ) -> Result<StoredPaymentMethod, StoreError> {
        let key = &self.keys.payment_method(&method.id);
        let events = &self.keys.payment_method_events(&method.id);
        let merchant = &self.announce_payment_method_event(method, &outbox).await?;
        let data = &to_json(method)?;
        let event = &to_json(event)?;
        let expiry = method.forget_at().timestamp();
        let script = &Script::new(&format!("{WRITE_EVENT}{SAVE}"));
        let id = &method.id;
        // Safe to send twice: a second run finds the first one's record and returns it.
        let (data, token, version): (Option<String>, Option<String>, Option<u64>) = self
            .run("save_payment_method", || {
                let mut conn = self.conn();
                async move {
                    let mut call = script.prepare_invoke();
                    call.key(key)
                        .key(events)
                        .key(self.keys.event_records(id))
                        .key(self.keys.deliveries(id))
                        .key(self.keys.outbox(id))
                        .arg(data)
                        .arg(token.expose())
                        .arg(event)
                        .arg(expiry);
                    event_args(&mut call, merchant.as_ref());
                    call.invoke_async(&mut conn).await
                }
            })
            .await?;
        let saved = stored(data, token, version)?
            .ok_or_else(|| StoreError::corrupt("a saved payment method reads back empty"))?;
        let index = &self
            .keys
            .customer_payment_methods(&method.customer_reference);
        let index_script = &Script::new(INDEX);
        let id = method.id.as_str();
        self.run("index_payment_method", || {
            let mut conn = self.conn();
            async move {
                index_script
                    .key(index)
                    .arg(id)
                    .arg(expiry)
                    .invoke_async::<i64>(&mut conn)
                    .await
            }
        })
        .await?;
        Ok(saved)
    }

    async fn payment_method(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Option<StoredPaymentMethod>, StoreError> {
        let key = &self.keys.payment_method(id);
        let (data, token, version): (Option<String>, Option<String>, Option<u64>) = self
            .run("get_payment_method", || {
                let mut conn = self.conn();
                async move {
                    ::redis::cmd("HMGET")
                        .arg(key)
                        .arg("data")
                        .arg("token")
                        .arg("version")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        stored(data, token, version)
    }

    async fn update_payment_method(
        &self,
        expected_version: u64,
        next: &PaymentMethod,
        event: &PaymentMethodEvent,
        outbox: Outbox<'_>,
    ) -> Result<bool, StoreError> {
        let key = &self.keys.payment_method(&next.id);
        let events = &self.keys.payment_method_events(&next.id);
        let merchant = &self.announce_payment_method_event(next, &outbox).await?;
        let data = &to_json(next)?;
        let event_json = &to_json(event)?;
        let expiry = next.forget_at().timestamp();
        let script = &Script::new(&format!("{WRITE_EVENT}{UPDATE}"));
        let id = &next.id;
        let (written, resent): (i64, _) = self
            .run_resending("update_payment_method", || {
                let mut conn = self.conn();
                async move {
                    let mut call = script.prepare_invoke();
                    call.key(key)
                        .key(events)
                        .key(self.keys.event_records(id))
                        .key(self.keys.deliveries(id))
                        .key(self.keys.outbox(id))
                        .arg(expected_version)
                        .arg(data)
                        .arg(event_json)
                        .arg(expiry);
                    event_args(&mut call, merchant.as_ref());
                    call.invoke_async(&mut conn).await
                }
            })
            .await?;
        if written == 1 {
            return Ok(true);
        }
        // Sent twice: a "no" may be the first run's own write (the stored record is ours).
        if matches!(resent, super::Resent::Yes)
            && let Some(now) = self.payment_method(&next.id).await?
        {
            return Ok(now.version == expected_version + 1 && &now.method == next);
        }
        Ok(false)
    }

    async fn list_payment_methods(
        &self,
        customer: &CustomerReference,
        limit: usize,
        starting_after: Option<&PaymentMethodId>,
    ) -> Result<PaymentMethodPage, StoreError> {
        let index = &self.keys.customer_payment_methods(customer);
        let max = &match starting_after {
            Some(id) => format!("({id}"),
            None => "+".to_owned(),
        };
        let mut page = PaymentMethodPage::default();
        let mut cursor = max.clone();
        // Members whose payment method has expired are skipped (and dropped from the index).
        loop {
            let want = limit + 1 - page.data.len();
            let from = &cursor;
            let ids: Vec<String> = self
                .run("list_payment_methods", || {
                    let mut conn = self.conn();
                    async move {
                        conn.zrevrangebylex_limit(index, from, "-", 0, want as isize)
                            .await
                    }
                })
                .await?;
            let exhausted = ids.len() < want;
            for raw in &ids {
                cursor = format!("({raw}");
                let Ok(id) = PaymentMethodId::parse(raw) else {
                    continue;
                };
                match self.payment_method(&id).await? {
                    Some(s) if s.method.customer_reference == *customer => page.data.push(s.method),
                    Some(_) => {}
                    None => {
                        let _ = self
                            .run("drop_payment_method_index", || {
                                let mut conn = self.conn();
                                async move { conn.zrem::<_, _, ()>(index, raw).await }
                            })
                            .await;
                    }
                }
            }
            if page.data.len() > limit {
                page.data.truncate(limit);
                page.has_more = true;
                return Ok(page);
            }
            if exhausted {
                return Ok(page);
            }
        }
    }

    async fn payment_method_events(
        &self,
        id: &PaymentMethodId,
    ) -> Result<Vec<PaymentMethodEvent>, StoreError> {
        let key = &self.keys.payment_method_events(id);
        let raw: Vec<String> = self
            .run("payment_method_events", || {
                let mut conn = self.conn();
                async move { conn.lrange(key, 0, -1).await }
            })
            .await?;
        raw.iter()
            .map(|e| {
                serde_json::from_str(e).map_err(|e| {
                    StoreError::corrupt(format!("a payment method event is unreadable: {e}"))
                })
            })
            .collect()
    }
}
