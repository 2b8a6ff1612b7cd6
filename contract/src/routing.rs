//! Placement of records on partitions and of users on shards.
//!
//! Both use the Java client's murmur2 so that a record produced by librdkafka with
//! `partitioner=murmur2_random`, by the Java client, or by any other client that
//! follows Kafka's default partitioner lands on the same partition, and so that the
//! shard of a user is a function of the user alone.

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), as a signed
/// 32-bit value like the Java client returns it.
///
/// librdkafka's `rd_murmur2` is the same function read as `u32`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // The length is mixed in as the Java client does: a Java `int`, so keys longer
    // than 4 GiB would wrap there too.
    let mut h: u32 = SEED ^ (data.len() as u32);

    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's `Utils.toPositive`: clears the sign bit (it is not `abs`,
/// which would overflow on `i32::MIN` and place keys differently).
pub fn to_positive(n: i32) -> u32 {
    (n & 0x7fff_ffff) as u32
}

/// The partition Kafka's default partitioner (and librdkafka's `murmur2_random`
/// for non-empty keys) chooses for `key` among `partitions`; `None` when there
/// are no partitions to choose from.
pub fn partition_for(key: &[u8], partitions: u32) -> Option<u32> {
    (partitions > 0).then(|| to_positive(murmur2(key)) % partitions)
}

/// The shard that holds `user_id`'s rows among `shards` shards.
///
/// A function of the user alone: adding partitions never moves a user's data.
/// When the partition count is a multiple of the shard count, every record of
/// partition `p` belongs to shard `p % shards`.
pub fn shard_for(user_id: &str, shards: u32) -> Option<u32> {
    partition_for(user_id.as_bytes(), shards)
}

/// Whether a record with `key` sits on `partition` as placed by a producer that
/// saw `partitions` partitions. A record that does not is misrouted: its user's
/// events might be split across workers and lose their order.
pub fn is_placed_correctly(key: &[u8], partition: i32, partitions: u32) -> bool {
    partition_for(key, partitions).is_some_and(|p| i64::from(p) == i64::from(partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java client's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_java_client_vectors() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), expected, "key {key:?}");
        }
    }

    /// librdkafka's `rdmurmur2.c` unit test (unsigned results).
    #[test]
    fn murmur2_matches_librdkafka_vectors() {
        let cases: [(&str, u32); 7] = [
            ("kafka", 0xd067_cf64),
            ("giberish123456789", 0x8f55_2b0c),
            ("1234", 0x9fc9_7b14),
            ("234", 0xe7c0_09ca),
            ("34", 0x8739_30da),
            ("4", 0x5a4b_5ca1),
            ("", 0x106e_08d9),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()) as u32, expected, "key {key:?}");
        }
    }

    #[test]
    fn partition_matches_kafka_console_producer_placement() {
        assert_eq!(
            partition_for(b"fd7af248-ce5c-46a5-93d7-1c0c9005b99d", 32),
            Some(26)
        );
    }

    #[test]
    fn partition_differs_from_librdkafka_crc32_default() {
        // librdkafka's default partitioner (CRC32) would put this key on 2.
        assert_eq!(partition_for(b"user_1", 3), Some(0));
    }

    #[test]
    fn to_positive_clears_sign_bit_instead_of_negating() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn placement_check_uses_the_producers_count() {
        let p = partition_for(b"user_1", 3).unwrap() as i32;
        assert!(is_placed_correctly(b"user_1", p, 3));
        assert!(!is_placed_correctly(b"user_1", p + 1, 3));
        assert!(!is_placed_correctly(b"user_1", -1, 3));
        assert!(!is_placed_correctly(b"user_1", 0, 0));
    }

    #[test]
    fn zero_partitions_or_shards_have_no_placement() {
        assert_eq!(partition_for(b"k", 0), None);
        assert_eq!(shard_for("u", 0), None);
    }

    #[test]
    fn partition_of_a_multiple_determines_the_shard() {
        // With P a multiple of N, partition p holds only users of shard p % N.
        for i in 0..2_000 {
            let user = format!("user-{i}");
            for (partitions, shards) in [(4, 2), (6, 3), (6, 2), (8, 4), (3, 1)] {
                let p = partition_for(user.as_bytes(), partitions).unwrap();
                assert_eq!(shard_for(&user, shards), Some(p % shards), "{user}");
            }
        }
    }

    #[test]
    fn growing_partitions_never_moves_a_user_between_shards() {
        for i in 0..1_000 {
            let user = format!("u{i}");
            let shard = shard_for(&user, 2).unwrap();
            for partitions in [2, 4, 6, 8, 16] {
                let p = partition_for(user.as_bytes(), partitions).unwrap();
                assert_eq!(p % 2, shard);
            }
        }
    }
}
