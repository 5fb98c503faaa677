//! Splitting one resync budget among resyncs that share a backing disk or a
//! NIC.

use serde::Serialize;

use super::rate::KibPerSec;

/// One resync competing for the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// UpToDate replicas of its volume that remain: fewer = more urgent.
    pub uptodate_replicas: u32,
    /// KiB still out of sync: among equally urgent ones, the one closest to
    /// done goes first (it restores redundancy soonest).
    pub out_of_sync_kib: u64,
    /// Its floor (always granted) and ceiling (never exceeded).
    pub floor: KibPerSec,
    pub ceiling: KibPerSec,
}

/// The shares, in the order of the claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allocation {
    pub shares: Vec<KibPerSec>,
    /// The floors alone exceed the budget (they are granted anyway: a resync
    /// always progresses).
    pub over_budget: bool,
}

/// Every claim gets its floor; what is left of `budget` goes in priority
/// order (fewest UpToDate replicas, then least out of sync, then position),
/// each up to its ceiling. The shares sum to the budget unless the floors
/// exceed it or the ceilings cannot absorb it.
pub fn allocate(budget: KibPerSec, claims: &[Claim]) -> Allocation {
    let floors: Vec<u64> = claims
        .iter()
        .map(|c| c.floor.min(c.ceiling).get())
        .collect();
    let floor_sum: u64 = floors.iter().fold(0u64, |a, &f| a.saturating_add(f));
    let mut left = budget.get().saturating_sub(floor_sum);
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by_key(|&i| (claims[i].uptodate_replicas, claims[i].out_of_sync_kib, i));
    let mut shares = floors.clone();
    for i in order {
        let room = claims[i].ceiling.get().saturating_sub(floors[i]);
        let extra = room.min(left);
        shares[i] += extra;
        left -= extra;
    }
    Allocation {
        shares: shares
            .into_iter()
            .map(|s| KibPerSec::new(s).unwrap_or(KibPerSec::MIN))
            .collect(),
        over_budget: floor_sum > budget.get(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(v: u64) -> KibPerSec {
        KibPerSec::new(v).unwrap()
    }

    fn claim(uptodate: u32, oos: u64) -> Claim {
        Claim {
            uptodate_replicas: uptodate,
            out_of_sync_kib: oos,
            floor: k(100),
            ceiling: k(10_000),
        }
    }

    #[test]
    fn fewest_replicas_then_smallest_remaining_first() {
        let claims = [claim(2, 10), claim(1, 1_000_000), claim(1, 500)];
        let a = allocate(k(12_000), &claims);
        assert_eq!(a.shares, vec![k(100), k(1_900), k(10_000)]);
        assert!(!a.over_budget);
        // More budget: the next in priority order (1 replica, more out of
        // sync) gets the rest before the one with 2 replicas.
        let a = allocate(k(15_000), &claims);
        assert_eq!(a.shares, vec![k(100), k(4_900), k(10_000)]);
        assert_eq!(a.shares.iter().map(|s| s.get()).sum::<u64>(), 15_000);
    }

    #[test]
    fn floors_are_granted_even_over_budget() {
        let claims = [claim(1, 1), claim(1, 2), claim(1, 3)];
        let a = allocate(k(200), &claims);
        assert_eq!(a.shares, vec![k(100); 3]);
        assert!(a.over_budget);
    }

    #[test]
    fn ceilings_cap_the_sum() {
        let claims = [claim(1, 1), claim(2, 2)];
        let a = allocate(KibPerSec::MAX, &claims);
        assert_eq!(a.shares, vec![k(10_000), k(10_000)]);
        assert!(allocate(k(5), &[]).shares.is_empty());
    }
}
