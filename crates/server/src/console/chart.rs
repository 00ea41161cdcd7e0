//! Charts drawn on the server as SVG geometry the templates place: API calls over time,
//! stacked by result. No chart library runs in the browser.

use osprey_graph::Counts;

/// The results a bar stacks, bottom up, with their CSS class and legend.
pub const RESULTS: [(&str, &str); 4] = [
    ("r-success", "Succeeded"),
    ("r-failed", "Failed"),
    ("r-unauthorized", "Unauthorized (401)"),
    ("r-forbidden", "Forbidden (403)"),
];

/// One segment of a bar.
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub class: &'static str,
    pub tip: String,
}

/// A stacked bar chart's geometry.
pub struct Bars {
    pub width: f64,
    pub height: f64,
    pub rects: Vec<Rect>,
    /// The largest bar's total, the top of the axis.
    pub max: u64,
    pub start: String,
    pub end: String,
    /// `hour` or `day`.
    pub bucket: &'static str,
    /// Where the plot area's bottom is.
    pub base: f64,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 170.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;
const LEFT: f64 = 48.0;
const HOUR_MS: i64 = 3_600_000;
/// More hours than this are drawn as days.
const MAX_HOURLY_BARS: i64 = 96;

impl Bars {
    /// Bars over `[start_ms, end_ms)` of the `hourly` counts (hour start, counts), one per
    /// hour, or per day beyond four days.
    pub fn of(start_ms: i64, end_ms: i64, hourly: &[(i64, Counts)]) -> Bars {
        let hours = ((end_ms - start_ms) / HOUR_MS).max(1);
        let (step, bucket) = if hours > MAX_HOURLY_BARS {
            (24 * HOUR_MS, "day")
        } else {
            (HOUR_MS, "hour")
        };
        let n = ((end_ms - start_ms + step - 1) / step).max(1) as usize;
        let mut buckets = vec![Counts::default(); n];
        for (hour, c) in hourly {
            if *hour < start_ms || *hour >= end_ms {
                continue;
            }
            let i = ((hour - start_ms) / step) as usize;
            if let Some(b) = buckets.get_mut(i) {
                b.merge(c);
            }
        }
        let max = buckets.iter().map(Counts::total).max().unwrap_or(0);
        let plot_w = WIDTH - LEFT - 8.0;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let slot = plot_w / n as f64;
        let bar = (slot * 0.8).max(1.0);
        let mut rects = Vec::new();
        for (i, b) in buckets.iter().enumerate() {
            if b.total() == 0 {
                continue;
            }
            let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
            let mut y = HEIGHT - BOTTOM;
            let at = super::view::rfc3339(start_ms + i as i64 * step);
            for ((class, label), value) in
                RESULTS
                    .iter()
                    .zip([b.success, b.failed, b.unauthorized, b.forbidden])
            {
                if value == 0 {
                    continue;
                }
                let h = plot_h * value as f64 / max as f64;
                y -= h;
                rects.push(Rect {
                    x,
                    y,
                    width: bar,
                    height: h,
                    class,
                    tip: format!("{at}: {value} {}", label.to_lowercase()),
                });
            }
        }
        Bars {
            width: WIDTH,
            height: HEIGHT,
            rects,
            max,
            start: super::view::shown_time(&super::view::rfc3339(start_ms)),
            end: super::view::shown_time(&super::view::rfc3339(end_ms)),
            bucket,
            base: HEIGHT - BOTTOM,
        }
    }

    /// Where the left axis labels go.
    pub fn left(&self) -> f64 {
        LEFT
    }

    pub fn top(&self) -> f64 {
        TOP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(success: u64, forbidden: u64) -> Counts {
        Counts {
            success,
            forbidden,
            ..Counts::default()
        }
    }

    #[test]
    fn bars_stack_results_and_scale_to_the_largest() {
        let b = Bars::of(
            0,
            24 * HOUR_MS,
            &[(0, counts(30, 10)), (5 * HOUR_MS, counts(20, 0))],
        );
        assert_eq!((b.bucket, b.max), ("hour", 40));
        assert_eq!(b.rects.len(), 3);
        let plot_h = HEIGHT - TOP - BOTTOM;
        let (ok, denied) = (&b.rects[0], &b.rects[1]);
        assert_eq!(ok.class, "r-success");
        assert!((ok.height - plot_h * 0.75).abs() < 1e-9);
        assert_eq!(denied.class, "r-forbidden");
        assert!(
            (denied.y + denied.height - ok.y).abs() < 1e-9,
            "stacked on top"
        );
        assert!(b.rects[2].x > ok.x);
        assert!(denied.tip.ends_with("10 forbidden (403)"), "{}", denied.tip);
    }

    #[test]
    fn long_scopes_are_drawn_per_day_and_outside_hours_ignored() {
        let b = Bars::of(
            0,
            30 * 24 * HOUR_MS,
            &[
                (HOUR_MS, counts(1, 0)),
                (2 * HOUR_MS, counts(2, 0)),
                (-HOUR_MS, counts(9, 0)),
            ],
        );
        assert_eq!((b.bucket, b.max, b.rects.len()), ("day", 3, 1));
        let empty = Bars::of(0, HOUR_MS, &[]);
        assert!(empty.rects.is_empty());
    }
}
