//! Shrinking a failing sequence by delta debugging: remove chunks of steps, keep each
//! removal after which the sequence still fails, and halve the chunk size until single
//! steps can no longer be removed (or time runs out).

use std::time::Instant;

/// The shortest subsequence of `items` found for which `fails` holds, trying until
/// `deadline`. `fails(items)` is assumed to hold.
pub fn minimize<T: Clone>(items: Vec<T>, deadline: Instant, mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut cur = items;
    let mut parts = 2usize;
    while cur.len() >= 2 {
        let chunk = cur.len().div_ceil(parts);
        let mut reduced = false;
        let mut start = 0;
        while start < cur.len() {
            if Instant::now() >= deadline {
                return cur;
            }
            let end = (start + chunk).min(cur.len());
            let candidate: Vec<T> = cur[..start].iter().chain(&cur[end..]).cloned().collect();
            if !candidate.is_empty() && fails(&candidate) {
                cur = candidate;
                reduced = true;
            } else {
                start = end;
            }
        }
        if reduced {
            parts = cur.len().div_ceil(chunk).max(2);
        } else if chunk == 1 {
            break;
        } else {
            parts = (parts * 2).min(cur.len());
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::minimize;
    use std::time::{Duration, Instant};

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn finds_the_two_needed_items() {
        let items: Vec<u32> = (0..1000).collect();
        let fails = |s: &[u32]| s.contains(&137) && s.contains(&901);
        assert_eq!(minimize(items, deadline(), fails), vec![137, 901]);
    }

    #[test]
    fn keeps_order_dependent_pairs() {
        let items: Vec<u32> = (0..300).map(|i| i % 7).collect();
        let fails = |s: &[u32]| s.windows(2).any(|w| w == [3, 5]) || s.iter().skip_while(|&&x| x != 3).any(|&x| x == 5);
        let min = minimize(items, deadline(), fails);
        assert_eq!(min, vec![3, 5]);
    }

    #[test]
    fn stops_at_the_deadline() {
        let items: Vec<u32> = (0..100).collect();
        let min = minimize(items.clone(), Instant::now(), |_| true);
        assert_eq!(min, items);
    }
}
