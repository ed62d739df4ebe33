//! `POST /demo/dispute/evidence`: the disputes section's form (a PDF from the shop's staff), sent
//! on as the gateway's `POST /v1/disputes/{id}/evidence`, as a merchant's backend would.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use secrecy::ExposeSecret;

use super::SandboxInfo;
use super::demo::evidence_refusal_message;
use super::routes::{back_to_disputes, load_result, render_result, send, unknown_checkout};
use gateway::domain::checkout::CheckoutId;
use gateway::startup::AppState;

/// The most the form reads of a file: the gateway's limit (4 MiB) and a little more, so that a
/// larger file is refused by the gateway, in its words, not cut short here.
const MAX_FILE: usize = 4 * 1024 * 1024 + 1;

#[derive(Default)]
struct EvidenceForm {
    checkout_id: String,
    dispute_id: String,
    description: String,
    file_name: String,
    file: Vec<u8>,
}

/// Reads the form's fields from its body (at most the route's payload limit, 6 MiB).
async fn read_form(content_type: &str, body: web::Bytes) -> Result<EvidenceForm, &'static str> {
    const UNREADABLE: &str = "The form could not be read: send it again.";
    let boundary = multer::parse_boundary(content_type).map_err(|_| UNREADABLE)?;
    let whole = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(whole, boundary);
    let mut out = EvidenceForm::default();
    while let Some(mut field) = form.next_field().await.map_err(|_| UNREADABLE)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            out.file_name = field.file_name().unwrap_or("evidence.pdf").to_owned();
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|_| UNREADABLE)? {
            if bytes.len() + chunk.len() > MAX_FILE {
                return Err("That file is too large: at most 4 MiB.");
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" => out.file = bytes,
            "checkout_id" => out.checkout_id = String::from_utf8_lossy(&bytes).into_owned(),
            "dispute_id" => out.dispute_id = String::from_utf8_lossy(&bytes).into_owned(),
            "description" => out.description = String::from_utf8_lossy(&bytes).trim().to_owned(),
            _ => {}
        }
    }
    Ok(out)
}

pub(crate) async fn submit(
    state: web::Data<AppState>,
    info: web::Data<SandboxInfo>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let form = match read_form(content_type, body).await {
        Ok(form) => form,
        Err(_) => return unknown_checkout(),
    };
    let Ok(id) = CheckoutId::parse(form.checkout_id.trim()) else {
        return unknown_checkout();
    };
    // Only a dispute of this checkout goes into the URL the demo calls.
    let Some(page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    let Some(dispute) = page
        .disputes
        .disputes
        .iter()
        .find(|d| d.id == form.dispute_id.trim())
        .map(|d| d.id.clone())
    else {
        return unknown_checkout();
    };
    let body = serde_json::json!({"files": [{
        "name": form.file_name,
        "type": "pdf",
        "content_base64": base64::engine::general_purpose::STANDARD.encode(&form.file),
        "description": if form.description.is_empty() { form.file_name.clone() } else { form.description.clone() },
    }]});
    let request = info
        .http
        .post(format!(
            "{}/v1/disputes/{dispute}/evidence",
            state.public_url()
        ))
        .bearer_auth(info.merchant_key.expose_secret())
        .json(&body);
    let answer = send(request).await;
    if matches!(answer, Some((200, _))) {
        return back_to_disputes(&id);
    }
    let Some(mut page) = load_result(&state, &info, &id).await else {
        return unknown_checkout();
    };
    let code = answer
        .as_ref()
        .and_then(|(_, body)| body["error"]["code"].as_str().map(str::to_owned));
    page.disputes.error = Some(evidence_refusal_message(code.as_deref()).to_owned());
    let status = match answer {
        Some((status, _)) if (400..500).contains(&status) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    render_result(page, status)
}
