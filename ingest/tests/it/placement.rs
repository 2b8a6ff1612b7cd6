//! Records land on the partition Kafka's Java partitioner predicts for their
//! user id, and say which partition count placed them.

use std::collections::BTreeSet;

use hookline_contract::{headers as h, partition_for};

use crate::broker::read;
use crate::harness::{Ingest, PARTITIONS, bytes, order};

#[tokio::test]
async fn every_record_is_on_its_users_murmur2_partition() {
    let ingest = Ingest::start().await;
    let users: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();

    for (i, user) in users.iter().enumerate() {
        let answer = ingest
            .post("orders", &bytes(&order(&format!("evt_{i}"), user)))
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }

    let records = read(&ingest.bootstrap, &ingest.orders, users.len()).await;
    let mut partitions = BTreeSet::new();
    for record in &records {
        let key = record.key.as_deref().unwrap();
        let expected = partition_for(key.as_bytes(), PARTITIONS as u32).unwrap() as i32;
        assert_eq!(record.partition, expected, "user {key}");
        assert_eq!(record.headers[h::PARTITION_COUNT], PARTITIONS.to_string());
        partitions.insert(record.partition);
    }
    assert_eq!(
        partitions.len(),
        PARTITIONS as usize,
        "users spread over every partition"
    );
    ingest.stop().await;
}
