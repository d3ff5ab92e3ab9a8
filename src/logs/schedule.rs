//! How a tail polls, pure (time comes in as values): which group polls next
//! ([`Schedule`]) and how fast the tail may call FilterLogEvents ([`Budget`]).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A group is polled at most this often.
pub(super) const POLL: Duration = Duration::from_millis(1000);

/// A group whose last answer brought new events within this time is hot.
const HOT_FOR: Duration = Duration::from_secs(60);

/// A hot group's time since its last poll counts this many times a quiet
/// one's: when the budget cannot poll every group each second, a group that
/// is logging is polled about this many times as often as a quiet one.
const HOT_WEIGHT: u32 = 8;

/// One group's place in the schedule.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// A live tail session streams its events: it is polled only when owed.
    live: bool,
    /// A live group owes one poll: what it had before its session opened
    /// (the window so far, or the gap while its session was opened again).
    owed: bool,
    /// A poll of it is under way.
    busy: bool,
    /// When its last poll was answered (`None`: never).
    polled_at: Option<Instant>,
    /// When a poll last brought it new events.
    events_at: Option<Instant>,
}

/// Which group polls next: every polled group in turn, the one waiting
/// longest first (so a round goes through all of them, and none is ever
/// dropped), a group more often while it brings new events (its wait
/// weighs [`HOT_WEIGHT`] times), none more often than every [`POLL`].
/// Groups a live tail session serves are polled once when owed.
#[derive(Debug, Clone)]
pub(super) struct Schedule {
    slots: Vec<Slot>,
}

impl Schedule {
    /// `count` groups, all polled, none polled yet.
    pub(super) fn new(count: usize) -> Self {
        Schedule { slots: vec![Slot::default(); count] }
    }

    /// `groups` are served by a live tail session from now on, and each
    /// owes one poll (for what arrived before the session opened).
    pub(super) fn streamed(&mut self, groups: &[usize]) {
        for &group in groups {
            self.slots[group].live = true;
            self.slots[group].owed = true;
        }
    }

    /// `groups` lost their live tail session: they are polled again.
    pub(super) fn polled(&mut self, groups: &[usize]) {
        for &group in groups {
            self.slots[group].live = false;
        }
    }

    fn due(slot: &Slot, now: Instant) -> bool {
        !slot.busy
            && if slot.live {
                slot.owed
            } else {
                slot.polled_at.is_none_or(|at| now.saturating_duration_since(at) >= POLL)
            }
    }

    /// The group to poll now (marked busy until [`Schedule::answered`] or
    /// [`Schedule::failed`]), `None` when no group is due.
    pub(super) fn next(&mut self, now: Instant) -> Option<usize> {
        let hot = |slot: &Slot| slot.events_at.is_some_and(|at| now.saturating_duration_since(at) < HOT_FOR);
        let (index, _) = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| Self::due(slot, now))
            // Never polled waits longest; ties go to the lower index.
            .max_by_key(|(index, slot)| {
                let waited = slot.polled_at.map_or(Duration::MAX, |at| now.saturating_duration_since(at));
                let weight = if hot(slot) { HOT_WEIGHT } else { 1 };
                (waited.saturating_mul(weight), std::cmp::Reverse(*index))
            })?;
        self.slots[index].busy = true;
        Some(index)
    }

    /// The poll of `group` was answered at `now`; `new_events` when it brought some.
    pub(super) fn answered(&mut self, group: usize, now: Instant, new_events: bool) {
        let slot = &mut self.slots[group];
        slot.busy = false;
        slot.owed = false;
        slot.polled_at = Some(now);
        if new_events {
            slot.events_at = Some(now);
        }
    }

    /// The poll of `group` failed: it is due again, ahead of the groups
    /// polled since.
    pub(super) fn failed(&mut self, group: usize) {
        self.slots[group].busy = false;
    }

    /// When the next group falls due (`None`: none will until something changes).
    pub(super) fn next_due(&self, now: Instant) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|slot| !slot.busy && (!slot.live || slot.owed))
            .map(|slot| match slot.polled_at {
                Some(at) if !slot.live => (at + POLL).max(now),
                _ => now,
            })
            .min()
    }
}

/// The rate the tail's budget allows when nothing throttles it: 4
/// FilterLogEvents per second. CloudWatch Logs' quota is per account and
/// Region, 5 per second in the Regions where it is lowest (10 or 25
/// elsewhere: "FilterLogEvents throttle limit in transactions per second",
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html>);
/// staying under it everywhere leaves room for the account's other clients.
pub(super) const POLL_RATE: f64 = 4.0;

/// The slowest a throttled budget goes: a call every 4 s.
const MIN_RATE: f64 = 0.25;

/// Calls per second the rate climbs back by with each answered call after
/// throttling halved it: from half to full in about ten seconds.
const RECOVERY: f64 = 0.1;

/// A token bucket shared by all of a tail's calls of one kind: at most
/// `rate` calls per second, a burst of one second's worth. Throttling (or a
/// server error) halves the rate and empties the bucket; each answered call then raises the rate
/// by [`RECOVERY`] until it is back to where it started.
#[derive(Debug, Clone)]
pub(super) struct Budget {
    ceiling: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Budget {
    /// A full bucket of `rate` calls per second.
    pub(super) fn new(rate: f64, now: Instant) -> Self {
        Budget { ceiling: rate, rate, tokens: rate.max(1.0), last: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate.max(1.0));
        self.last = self.last.max(now);
    }

    /// How long until a call may be made (zero: now).
    pub(super) fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).max(0.0))
    }

    /// Spends one call; `false` (nothing spent) when the bucket has none.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// The service throttled a call, or failed on its side: slow down.
    pub(super) fn throttled(&mut self, now: Instant) {
        self.refill(now);
        self.rate = (self.rate / 2.0).max(MIN_RATE);
        self.tokens = 0.0;
    }

    /// A call was answered: recover some of the rate.
    pub(super) fn answered(&mut self) {
        self.rate = (self.rate + RECOVERY).min(self.ceiling);
    }
}

/// The budget, even if a task panicked holding it (it is only numbers).
pub(super) fn lock(budget: &Mutex<Budget>) -> MutexGuard<'_, Budget> {
    budget.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits until `budget` allows a call, and spends it.
pub(super) async fn spend(budget: &Mutex<Budget>) {
    loop {
        let wait = {
            let mut budget = lock(budget);
            let now = Instant::now();
            if budget.take(now) {
                return;
            }
            budget.wait(now)
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    /// Polls `groups` for `seconds` under a budget of [`POLL_RATE`], every
    /// answer bringing events for the groups in `busy`: how often each was polled.
    fn simulate(groups: usize, busy: &[usize], seconds: u64) -> Vec<usize> {
        let start = Instant::now();
        let mut schedule = Schedule::new(groups);
        let mut budget = Budget::new(POLL_RATE, start);
        let mut polls = vec![0; groups];
        for ms in (0..seconds * 1000).step_by(10) {
            let now = at(start, ms);
            if budget.wait(now).is_zero()
                && let Some(group) = schedule.next(now)
            {
                assert!(budget.take(now));
                polls[group] += 1;
                schedule.answered(group, now, busy.contains(&group));
            }
        }
        polls
    }

    #[test]
    fn every_group_in_turn_then_again_after_a_second() {
        let start = Instant::now();
        let mut schedule = Schedule::new(3);
        assert_eq!([schedule.next(start), schedule.next(start), schedule.next(start)], [Some(0), Some(1), Some(2)]);
        assert_eq!(schedule.next(start), None, "all busy");
        for group in [1, 0, 2] {
            schedule.answered(group, start, false);
        }
        assert_eq!(schedule.next(at(start, 500)), None, "not again within a second");
        assert_eq!(schedule.next_due(at(start, 500)), Some(at(start, 1000)));
        let later = at(start, 1000);
        let order: Vec<Option<usize>> = (0..3).map(|_| schedule.next(later)).collect();
        assert_eq!(order, [Some(0), Some(1), Some(2)], "answered at the same time: by index");
    }

    #[test]
    fn the_group_waiting_longest_goes_first() {
        let start = Instant::now();
        let mut schedule = Schedule::new(3);
        for (group, ms) in [(0, 300), (1, 100), (2, 200)] {
            assert_eq!(schedule.next(start), Some(group));
            schedule.answered(group, at(start, ms), false);
        }
        let now = at(start, 2000);
        let order: Vec<Option<usize>> = (0..3).map(|_| schedule.next(now)).collect();
        assert_eq!(order, [Some(1), Some(2), Some(0)]);
    }

    #[test]
    fn a_failed_poll_is_due_again_first() {
        let start = Instant::now();
        let mut schedule = Schedule::new(3);
        for group in 0..3 {
            assert_eq!(schedule.next(start), Some(group));
        }
        schedule.answered(0, at(start, 10), false);
        schedule.answered(2, at(start, 10), false);
        schedule.failed(1);
        assert_eq!(schedule.next(at(start, 20)), Some(1), "never answered: due at once");
        schedule.answered(1, at(start, 30), false);
        assert_eq!(schedule.next(at(start, 1500)), Some(0));
    }

    #[test]
    fn live_groups_poll_once_when_owed() {
        let start = Instant::now();
        let mut schedule = Schedule::new(3);
        schedule.streamed(&[0, 1]);
        let first: Vec<Option<usize>> = (0..4).map(|_| schedule.next(start)).collect();
        assert_eq!(first, [Some(0), Some(1), Some(2), None], "each once: the window so far");
        for group in 0..3 {
            schedule.answered(group, start, false);
        }
        let later = at(start, 5000);
        assert_eq!(schedule.next(later), Some(2), "only the polled group");
        assert_eq!(schedule.next(later), None);
        // A session opened again: its groups owe the gap.
        schedule.streamed(&[1]);
        assert_eq!(schedule.next(later), Some(1));
        schedule.answered(1, later, false);
        // A session that could not be opened again: its groups are polled.
        schedule.polled(&[0]);
        assert_eq!(schedule.next(later), Some(0));
        assert_eq!(schedule.next_due(later), None, "nothing else falls due while 0 and 2 are busy");
    }

    #[test]
    fn under_the_budget_a_busy_group_polls_more_often_and_none_is_dropped() {
        // 40 groups at 4 calls per second: a round takes ten seconds.
        let polls = simulate(40, &[7], 120);
        let quiet = polls.iter().enumerate().filter(|(group, _)| *group != 7).map(|(_, n)| *n);
        let (fewest, most) = (quiet.clone().min().unwrap(), quiet.max().unwrap());
        assert!(fewest >= 8, "every quiet group polled in turn, about every ten seconds: {polls:?}");
        assert!(most - fewest <= 1, "round-robin among the quiet groups: {polls:?}");
        assert!(polls[7] >= 4 * most, "the busy group polled far more often: {polls:?}");
        assert!(polls.iter().sum::<usize>() <= 4 * 120 + 4, "within the budget: {polls:?}");
    }

    #[test]
    fn with_budget_to_spare_every_group_polls_each_second() {
        let polls = simulate(3, &[], 10);
        assert!(polls.iter().all(|n| (9..=10).contains(n)), "{polls:?}");
    }

    #[test]
    fn the_budget_bursts_one_second_then_paces() {
        let start = Instant::now();
        let mut budget = Budget::new(4.0, start);
        assert!((0..4).all(|_| budget.take(start)));
        assert!(!budget.take(start));
        assert_eq!(budget.wait(start), Duration::from_millis(250));
        assert!(budget.take(at(start, 250)));
        assert!(!budget.take(at(start, 260)));
    }

    /// Calls the budget lets through, taken as soon as it allows for
    /// `seconds`, never meet a quota of 5 per second (a bucket of 5).
    #[test]
    fn paced_calls_never_meet_a_quota_of_five_per_second() {
        let start = Instant::now();
        let mut budget = Budget::new(POLL_RATE, start);
        let mut quota = Budget::new(5.0, start);
        let mut calls = 0;
        for ms in 0..30_000 {
            let now = at(start, ms);
            if budget.take(now) {
                assert!(quota.take(now), "call {calls} at {ms} ms met the quota");
                calls += 1;
            }
        }
        assert!((120..=124).contains(&calls), "{calls} calls in 30 s");
    }

    #[test]
    fn throttling_halves_the_rate_and_answers_bring_it_back() {
        let start = Instant::now();
        let mut budget = Budget::new(4.0, start);
        budget.throttled(start);
        assert_eq!(budget.wait(start), Duration::from_millis(500), "half the rate, the bucket emptied");
        budget.throttled(start);
        budget.throttled(start);
        budget.throttled(start);
        budget.throttled(start);
        assert_eq!(budget.wait(start), Duration::from_secs(4), "never slower than MIN_RATE");
        let count = |budget: &mut Budget, from: u64, seconds: u64| {
            (from * 1000..(from + seconds) * 1000).filter(|ms| budget.take(at(start, *ms))).count()
        };
        assert!(count(&mut budget, 0, 10) <= 3);
        for _ in 0..20 {
            budget.answered();
        }
        let recovering = count(&mut budget, 10, 10);
        assert!((20..=23).contains(&recovering), "2.25 calls per second: {recovering}");
        for _ in 0..100 {
            budget.answered();
        }
        let recovered = count(&mut budget, 20, 10);
        assert!((40..=43).contains(&recovered), "back to 4 per second, no higher: {recovered}");
    }
}
