//! The webhook endpoints in Redis: one hash, `{prefix}:{we}:endpoints` (endpoint id
//! → JSON), in one slot of its own. Every write is a compare-and-set on the stored JSON; every
//! write and every read refreshes its TTL, so endpoints live as long as the gateway uses them
//! and a retention past that.

use ::redis::Script;
use async_trait::async_trait;

use super::{RedisStore, from_json, millis, to_json};
use crate::domain::webhook_endpoint::{WebhookEndpoint, WebhookEndpointId};
use crate::store::StoreError;
use crate::store::endpoints::{PutReply, WebhookEndpoints};

/// KEYS: endpoints. ARGV: id, expected JSON or '' (insert), new JSON or '' (delete), max, ttl
/// ms. Answers 1 written, 0 conflict, -1 full.
const PUT: &str = r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if current then
    return 0
  end
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
    return -1
  end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"#;

/// KEYS: endpoints. ARGV: ttl ms, id or none (all). Refreshes the TTL and answers the JSONs.
const READ: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if ARGV[2] then
  local one = redis.call('HGET', KEYS[1], ARGV[2])
  if one then
    return {one}
  end
  return {}
end
return redis.call('HVALS', KEYS[1])
"#;

pub(super) struct EndpointScripts {
    put: Script,
    read: Script,
}

impl EndpointScripts {
    pub fn new() -> Self {
        Self {
            put: Script::new(PUT),
            read: Script::new(READ),
        }
    }
}

impl RedisStore {
    /// How long the endpoints outlive their last use: the checkouts' retention, at least a year.
    fn endpoints_ttl_ms(&self) -> u64 {
        millis(self.ttls.retention).max(365 * 24 * 3600 * 1000)
    }

    async fn put_raw(
        &self,
        id: &WebhookEndpointId,
        expected: &str,
        next: &str,
        max: usize,
    ) -> Result<i64, StoreError> {
        let ttl = self.endpoints_ttl_ms();
        let (outcome, resent) = self
            .run_resending("put_endpoint", || {
                let mut conn = self.conn();
                async move {
                    self.endpoint_scripts
                        .put
                        .key(self.keys.webhook_endpoints())
                        .arg(id.as_str())
                        .arg(expected)
                        .arg(next)
                        .arg(max)
                        .arg(ttl)
                        .invoke_async::<i64>(&mut conn)
                        .await
                }
            })
            .await?;
        if outcome == 0 && resent == super::Resent::Yes {
            // The first run may have written: then the stored value is ours.
            let stored = self.read_raw(Some(id)).await?;
            if stored.first().map(String::as_str).unwrap_or("") == next {
                return Ok(1);
            }
        }
        Ok(outcome)
    }

    async fn read_raw(&self, id: Option<&WebhookEndpointId>) -> Result<Vec<String>, StoreError> {
        let ttl = self.endpoints_ttl_ms();
        self.run("endpoints", || {
            let mut conn = self.conn();
            async move {
                let mut call = self.endpoint_scripts.read.prepare_invoke();
                call.key(self.keys.webhook_endpoints()).arg(ttl);
                if let Some(id) = id {
                    call.arg(id.as_str());
                }
                call.invoke_async::<Vec<String>>(&mut conn).await
            }
        })
        .await
    }
}

#[async_trait]
impl WebhookEndpoints for RedisStore {
    async fn put_endpoint(
        &self,
        next: &WebhookEndpoint,
        expected: Option<&WebhookEndpoint>,
        max: usize,
    ) -> Result<PutReply, StoreError> {
        let expected = expected
            .map(|e| to_json("webhook endpoint", e))
            .transpose()?
            .unwrap_or_default();
        let json = to_json("webhook endpoint", next)?;
        Ok(match self.put_raw(&next.id, &expected, &json, max).await? {
            1 => PutReply::Written,
            -1 => PutReply::Full,
            _ => PutReply::Conflict,
        })
    }

    async fn endpoint(
        &self,
        id: &WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.read_raw(Some(id))
            .await?
            .first()
            .map(|raw| from_json("webhook endpoint", raw))
            .transpose()
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut all = self
            .read_raw(None)
            .await?
            .iter()
            .map(|raw| from_json::<WebhookEndpoint>("webhook endpoint", raw))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(all)
    }

    async fn delete_endpoint(&self, expected: &WebhookEndpoint) -> Result<bool, StoreError> {
        let json = to_json("webhook endpoint", expected)?;
        let outcome = self.put_raw(&expected.id, &json, "", usize::MAX).await?;
        Ok(outcome == 1 || (outcome == 0 && self.endpoint(&expected.id).await?.is_none()))
    }
}
