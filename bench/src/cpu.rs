//! CPU time spent by the processes of a run, read from `/proc/<pid>/stat`:
//! user plus system time of a process's threads, ended ones included, and of
//! its children that ended (a PostgreSQL backend that closed its connection
//! is counted in the postmaster's children).

/// Clock ticks per second of the times in `/proc` (`USER_HZ`): the kernel
/// exports 100 on every architecture Linux runs hookline on, whatever its
/// internal tick rate.
const TICKS_PER_SECOND: f64 = 100.0;

/// The CPU figures of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    /// The program's name (at most 15 bytes: the kernel truncates it).
    name: String,
    /// User and system ticks of the process itself.
    own: u64,
    /// User and system ticks of its children that ended and were waited for.
    ended_children: u64,
}

/// Parses `/proc/<pid>/stat`. The name is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted after the last `)`.
fn parse(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    // After the name: state (field 3), …, utime (14), stime (15), cutime
    // (16), cstime (17).
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        name,
        own: field(14)? + field(15)?,
        ended_children: field(16)? + field(17)?,
    })
}

fn stat(pid: u32) -> Option<Stat> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds the processes `pids` have used so far (0 for one that is gone).
pub fn of(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|&pid| stat(pid))
        .map(|s| s.own)
        .sum();
    ticks as f64 / TICKS_PER_SECOND
}

/// CPU seconds process `pid` has used so far, with its children that ended
/// and were waited for (a load generator run as a child and finished).
pub fn with_ended_children(pid: u32) -> f64 {
    stat(pid).map_or(0, |s| s.own + s.ended_children) as f64 / TICKS_PER_SECOND
}

/// CPU seconds of each live thread of process `pid`, summed by thread name
/// with the digits and dashes at its end dropped (`rdk:broker1` and
/// `rdk:broker-1` are both `rdk:broker`), so that one pool's threads count
/// together. Threads that ended are not listed; [`of`] counts them.
pub fn threads(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|text| parse(&text))
        else {
            continue;
        };
        let name = stat
            .name
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
            .to_owned();
        *by_name.entry(name).or_insert(0.0) += stat.own as f64 / TICKS_PER_SECOND;
    }
    by_name
}

/// CPU seconds every process named `name` whose command line mentions
/// `mentioning` has used so far, with its ended children's: for PostgreSQL,
/// the postmaster, its live backends and the backends that came and went.
pub fn named(name: &str, mentioning: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let ticks: u64 = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(mentioning))
        })
        .filter_map(stat)
        .filter(|s| s.name == name)
        .map(|s| s.own + s.ended_children)
        .sum();
    ticks as f64 / TICKS_PER_SECOND
}

/// hookline's processes of a run: what answers the HTTP requests (ingest,
/// or the baseline's handler), and the workers.
#[derive(Debug, Clone, Default)]
pub struct Pids {
    pub front: Vec<u32>,
    pub workers: Vec<u32>,
}

/// CPU seconds so far of hookline's processes, of PostgreSQL (every cluster
/// on the machine: other databases' work counts too), and of the broker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Ingest, or the baseline's handler.
    pub front: f64,
    pub workers: f64,
    pub postgres: f64,
    pub broker: f64,
}

impl Usage {
    /// Now, with hookline's processes `pids` and the tansu broker that
    /// listens at `bootstrap` (0 for another broker, or a remote one).
    pub fn now(pids: &Pids, bootstrap: &str) -> Self {
        Self {
            front: of(&pids.front),
            workers: of(&pids.workers),
            postgres: named("postgres", ""),
            broker: named("tansu", bootstrap),
        }
    }

    /// What was used between `earlier` and this.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            front: self.front - earlier.front,
            workers: self.workers - earlier.workers,
            postgres: self.postgres - earlier.postgres,
            broker: self.broker - earlier.broker,
        }
    }

    /// Per 1,000 of `count` (webhooks).
    pub fn per_thousand(&self, count: usize) -> Usage {
        let scale = 1_000.0 / count.max(1) as f64;
        Usage {
            front: self.front * scale,
            workers: self.workers * scale,
            postgres: self.postgres * scale,
            broker: self.broker * scale,
        }
    }

    /// hookline's own processes together.
    pub fn hookline(&self) -> f64 {
        self.front + self.workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_times_are_counted_after_the_name_whatever_it_holds() {
        let line = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1085 0 0 0 250 30 7 3 20 0 8 0 123 1000 200";
        assert_eq!(
            parse(line),
            Some(Stat {
                name: "tokio (rt) x".into(),
                own: 280,
                ended_children: 10,
            })
        );
        assert_eq!(parse("17 (short) S 1 2"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let me = std::process::id();
        let _busy: u64 = (0..2_000_000u64).map(|i| i % 7).sum();
        assert!(stat(me).is_some_and(|s| s.name.starts_with("hookline")));
        assert!(of(&[me]) >= 0.0);
        assert_eq!(of(&[u32::MAX]), 0.0);
        let threads = threads(me);
        assert!(!threads.is_empty());
        assert!(
            threads
                .keys()
                .all(|name| !name.ends_with(|c: char| c.is_ascii_digit()))
        );
        assert!(threads.values().sum::<f64>() <= of(&[me]) + 0.01);
    }
}
