use crate::helpers::*;

#[tokio::test]
async fn a_spawned_simulator_creates_and_returns_an_order() {
    let sim = spawn().await;
    let id = order_id();
    let (status, body) = sim.create(&order_body(&id, "4111111111111111")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["status"], "initialized");
    let order = sim.order(&id).await;
    assert_eq!(order["order_id"], id.as_str());
    sim.handle.stop().await;
}
