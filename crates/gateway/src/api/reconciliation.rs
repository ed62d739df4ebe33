//! `GET /v1/reconciliation`: the last 100 sweeps of MSP's transaction list, newest
//! first: `{"data": [{started_at, finished_at, rows, differences: {missed_status,
//! dashboard_refunds, chargebacks}, error, …}]}`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::auth::Merchant;
use super::respond;
use super::strict_json;
use super::to_json;
use crate::errors::ApiError;
use crate::flows::sweep::SweepReport;
use crate::state::AppState;
use crate::store::StoredResponse;

#[derive(serde::Serialize)]
struct Sweeps {
    data: Vec<SweepReport>,
}

pub async fn list(
    state: web::Data<AppState>,
    _merchant: Merchant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    strict_json::check_query(req.query_string(), &[])?;
    let stored = state
        .flows
        .store
        .recent_sweeps()
        .await
        .map_err(ApiError::store_unavailable)?;
    let data = stored
        .iter()
        .filter_map(|raw| match serde_json::from_str(raw) {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::warn!(error = %e, "skipped a stored sweep report that does not decode");
                None
            }
        })
        .collect();
    Ok(respond(StoredResponse {
        status: 200,
        body: to_json(&Sweeps { data }),
    }))
}
