//! `statement_timeout`: statement deadlines, and the setting's values.
//!
//! A statement run under a timeout is armed with its deadline ([`arm`]); one thread
//! (started on the first arming) sleeps until the earliest deadline and sets the cancel
//! flag of each statement still running past its own, so a timeout stops a statement
//! where a cancel request does (the executor checks the flag as it reads rows, see
//! [`crate::query::exec::ExecContext::check_cancel`]) and fails it with 57014. The
//! statement's [`Armed`] guard disarms it when it ends and says whether it fired, so the
//! error can name the timeout rather than a user's request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result, SqlState};

/// The setting's name.
pub const SETTING: &str = "statement_timeout";

/// The longest timeout the setting takes, as in PostgreSQL: `INT_MAX` milliseconds.
pub const MAX_MILLIS: u64 = i32::MAX as u64;

/// Units a value may carry, longest first where one is a prefix of another.
const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("min", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// The timeout `value` sets (None: no timeout, for 0), or 22023 for a value the
/// setting does not take. A number alone is milliseconds, as in PostgreSQL; a unit
/// (`ms`, `s`, `min`, `h`, `d`) may follow it, and a fraction is rounded to the
/// nearest millisecond.
pub fn parse(value: &str) -> Result<Option<Duration>> {
    let invalid = |why: &str| {
        Error::invalid(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"{SETTING}\": \"{value}\" ({why})"),
        )
    };
    let v = value.trim();
    let end = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(end);
    let unit = unit.trim();
    let scale = match unit {
        "" => 1,
        _ => UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, ms)| *ms)
            .ok_or_else(|| invalid("valid units are \"ms\", \"s\", \"min\", \"h\", and \"d\""))?,
    };
    let millis = number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| (n * scale as f64).round())
        .ok_or_else(|| invalid("a number of milliseconds, or of a unit"))?;
    if millis > MAX_MILLIS as f64 {
        return Err(invalid(&format!("at most {MAX_MILLIS} ms")));
    }
    Ok((millis >= 1.0).then(|| Duration::from_millis(millis as u64)))
}

/// How `SHOW` gives a timeout: in the largest unit it is a whole number of, as
/// PostgreSQL shows it (`5s`, `90s`, `2min`, `0`).
pub fn display(timeout: Option<Duration>) -> String {
    let Some(t) = timeout else {
        return "0".into();
    };
    let millis = t.as_millis() as u64;
    let (name, ms) = UNITS
        .iter()
        .rev()
        .find(|(_, ms)| millis.is_multiple_of(*ms))
        .copied()
        .unwrap_or(("ms", 1));
    format!("{}{name}", millis / ms)
}

/// A statement armed with a deadline; disarmed when dropped.
pub struct Armed {
    deadline: Instant,
    id: u64,
    fired: Arc<AtomicBool>,
}

impl Armed {
    /// Whether the deadline passed while the statement ran (its cancel flag was set).
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// The error a statement stopped by its deadline ends with.
    pub fn error() -> Error {
        Error::invalid(
            crate::query::exec::QUERY_CANCELED,
            "canceling statement due to statement timeout",
        )
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        watchdog()
            .state
            .lock()
            .deadlines
            .remove(&(self.deadline, self.id));
    }
}

/// Sets `cancel` once `timeout` has passed from now, unless the returned guard is
/// dropped first.
pub fn arm(timeout: Duration, cancel: Arc<AtomicBool>) -> Armed {
    let dog = watchdog();
    let deadline = Instant::now() + timeout;
    let fired = Arc::new(AtomicBool::new(false));
    let mut state = dog.state.lock();
    state.next_id += 1;
    let id = state.next_id;
    let earliest = state
        .deadlines
        .keys()
        .next()
        .is_none_or(|&(d, _)| deadline < d);
    state.deadlines.insert(
        (deadline, id),
        Entry {
            cancel,
            fired: fired.clone(),
        },
    );
    drop(state);
    if earliest {
        dog.wake.notify_one();
    }
    Armed {
        deadline,
        id,
        fired,
    }
}

struct Entry {
    cancel: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// The armed statements by deadline (and arming order, for equal deadlines).
    deadlines: BTreeMap<(Instant, u64), Entry>,
}

struct Watchdog {
    state: Mutex<State>,
    wake: Condvar,
}

/// The one watchdog, its thread started on first use.
fn watchdog() -> &'static Watchdog {
    static DOG: OnceLock<Watchdog> = OnceLock::new();
    static STARTED: OnceLock<()> = OnceLock::new();
    let dog = DOG.get_or_init(|| Watchdog {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    });
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("tissdb-timeouts".into())
            .spawn(move || watch(dog));
        if let Err(e) = spawned {
            tracing::error!("cannot start the statement_timeout thread: {e}");
        }
    });
    dog
}

/// The watchdog's thread: fires each deadline as it passes.
fn watch(dog: &'static Watchdog) {
    let mut state = dog.state.lock();
    loop {
        let now = Instant::now();
        while let Some(entry) = state.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let e = entry.remove();
            e.fired.store(true, Ordering::Release);
            e.cancel.store(true, Ordering::Relaxed);
        }
        match state.deadlines.keys().next() {
            Some(&(deadline, _)) => {
                dog.wake.wait_until(&mut state, deadline);
            }
            None => dog.wake.wait(&mut state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_postgresql_reads_them() {
        let ms = |v: &str| parse(v).unwrap().map(|d| d.as_millis() as u64);
        assert_eq!(ms("0"), None);
        assert_eq!(ms("250"), Some(250));
        assert_eq!(ms(" 250ms "), Some(250));
        assert_eq!(ms("5s"), Some(5_000));
        assert_eq!(ms("5 s"), Some(5_000));
        assert_eq!(ms("2min"), Some(120_000));
        assert_eq!(ms("1h"), Some(3_600_000));
        assert_eq!(ms("1d"), Some(86_400_000));
        assert_eq!(ms("2147483647"), Some(MAX_MILLIS));
        assert_eq!(ms("1.5s"), Some(1_500));
        assert_eq!(ms("0.4"), None);
        assert_eq!(ms("2.6"), Some(3));
        for bad in [
            "",
            "-1",
            "1.2.3s",
            ".",
            "5 years",
            "s",
            "2147483648",
            "25d",
            "1e3",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.sqlstate().code(), "22023", "{bad}: {e}");
        }
    }

    #[test]
    fn shown_in_the_largest_whole_unit() {
        let show = |v: &str| display(parse(v).unwrap());
        assert_eq!(show("0"), "0");
        assert_eq!(show("250"), "250ms");
        assert_eq!(show("5000"), "5s");
        assert_eq!(show("90s"), "90s");
        assert_eq!(show("120000"), "2min");
        assert_eq!(show("86400000"), "1d");
    }

    #[test]
    fn a_deadline_sets_the_flag_once_passed_and_not_after_disarming() {
        let late = Arc::new(AtomicBool::new(false));
        let armed = arm(Duration::from_millis(30), late.clone());
        let early = Arc::new(AtomicBool::new(false));
        let disarmed = arm(Duration::from_millis(10), early.clone());
        drop(disarmed);
        let far = Arc::new(AtomicBool::new(false));
        let _far = arm(Duration::from_secs(3600), far.clone());
        assert!(!armed.fired());
        let start = Instant::now();
        while !late.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(late.load(Ordering::Relaxed));
        assert!(armed.fired());
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(!early.load(Ordering::Relaxed));
        assert!(!far.load(Ordering::Relaxed));
    }
}
