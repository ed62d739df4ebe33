//! Point 10: concurrent clients are served correctly (the throughput figure is in README).

use std::collections::HashSet;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_clients_get_distinct_orders_and_one_wins_a_shared_id() {
    let sim = std::sync::Arc::new(spawn().await);
    let mut tasks = vec![];
    for _ in 0..32 {
        let sim = sim.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = vec![];
            for _ in 0..10 {
                let id = order_id();
                let (status, body) = sim.create(&order_body(&id, "4111111111111111")).await;
                assert_eq!(status, 200, "{body}");
                ids.push((id, body["data"]["transaction_id"].as_u64().unwrap()));
            }
            ids
        }));
    }
    let mut ids = HashSet::new();
    let mut transactions = HashSet::new();
    for t in tasks {
        for (id, tx) in t.await.unwrap() {
            ids.insert(id);
            transactions.insert(tx);
        }
    }
    assert_eq!(
        (ids.len(), transactions.len()),
        (320, 320),
        "transaction ids are unique"
    );
    for id in ids.iter().take(20) {
        assert_eq!(sim.order(id).await["order_id"], id.as_str());
    }

    // 32 clients race to create the same order id: exactly one wins, the rest get 1006.
    let shared = order_id();
    let mut racers = vec![];
    for _ in 0..32 {
        let sim = sim.clone();
        let shared = shared.clone();
        racers.push(tokio::spawn(async move {
            sim.create(&order_body(&shared, "4111111111111111")).await
        }));
    }
    let mut won = 0;
    for r in racers {
        let (status, body) = r.await.unwrap();
        match status {
            200 => won += 1,
            409 => assert_eq!(body["error_code"], 1006),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(won, 1);
    if let Ok(sim) = std::sync::Arc::try_unwrap(sim) {
        sim.handle.stop().await;
    }
}
