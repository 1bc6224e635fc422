//! Samples, percentiles, ratios, and the Markdown and JSON output.

use anyhow::Result;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Samples of one workload on one target.
pub struct Series {
    pub target: String,
    pub samples: Vec<f64>,
}

impl Series {
    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        s
    }

    pub fn pct(&self, p: f64) -> f64 {
        let s = self.sorted();
        if s.is_empty() {
            return f64::NAN;
        }
        let idx = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
        s[idx]
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
}

/// One table: a workload measured on several targets, with the unit of its samples.
pub struct Table {
    pub title: String,
    pub unit: &'static str,
    /// Whether bigger samples are better (throughput) or worse (latency).
    pub higher_is_better: bool,
    /// Print the maximum too (latencies: BENCH.md asks for it).
    pub show_max: bool,
    /// The name of the first series in the ratio columns (default "floe").
    pub lead: Option<String>,
    pub rows: Vec<(String, Vec<Series>)>,
}

pub struct Report {
    pub machine: String,
    pub tables: Vec<Table>,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    pub fn new(machine: &str) -> Report {
        Report { machine: machine.to_string(), tables: Vec::new() }
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("{}\n", self.machine);
        for t in &self.tables {
            let targets: Vec<&str> =
                t.rows.first().map(|r| r.1.iter().map(|s| s.target.as_str()).collect()).unwrap_or_default();
            let lead = t.lead.as_deref().unwrap_or("floe");
            let ratios = ratio_columns(&targets, lead);
            out.push_str(&format!("\n### {} ({})\n\n| case | n |", t.title, t.unit));
            for name in &targets {
                out.push_str(&format!(" {name} p50 | {name} p99 |"));
                if t.show_max {
                    out.push_str(&format!(" {name} max |"));
                }
            }
            for (label, _, other) in &ratios {
                out.push_str(&format!(" {label}/{} p50 |", targets[*other]));
            }
            out.push_str("\n|---|---|");
            out.push_str(&(if t.show_max { "---|---|---|" } else { "---|---|" }).repeat(targets.len()));
            out.push_str(&"---|".repeat(ratios.len()));
            out.push('\n');
            for (case, series) in &t.rows {
                let n = series.first().map_or(0, |s| s.samples.len());
                out.push_str(&format!("| {case} | {n} |"));
                for s in series {
                    out.push_str(&format!(" {} | {} |", fmt(s.pct(0.5)), fmt(s.pct(0.99))));
                    if t.show_max {
                        out.push_str(&format!(" {} |", fmt(s.max())));
                    }
                }
                // A row may have fewer series than the first (a reference that does
                // not apply to it): its missing ratios are left out.
                for (_, subject, other) in &ratios {
                    if let (Some(s), Some(o)) = (series.get(*subject), series.get(*other)) {
                        out.push_str(&format!(" {:.2}x |", s.pct(0.5) / o.pct(0.5)));
                    }
                }
                out.push('\n');
            }
            if targets.len() < 2 {
                continue;
            }
            out.push_str(&if t.higher_is_better {
                format!("\n{lead}/x > 1 means {lead} is faster.\n")
            } else {
                format!("\n{lead}/x < 1 means {lead} is faster.\n")
            });
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let tables: Vec<_> = self
            .tables
            .iter()
            .map(|t| {
                let rows: Vec<_> = t
                    .rows
                    .iter()
                    .map(|(case, series)| {
                        let s: Vec<_> = series
                            .iter()
                            .map(|s| json!({"target": s.target, "n": s.samples.len(), "p50": s.pct(0.5), "p99": s.pct(0.99), "max": s.max(), "samples": s.samples}))
                            .collect();
                        json!({"case": case, "series": s})
                    })
                    .collect();
                json!({"title": t.title, "unit": t.unit, "higher_is_better": t.higher_is_better, "rows": rows})
            })
            .collect();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&json!({"machine": self.machine, "tables": tables}))?)?;
        Ok(())
    }
}

/// The ratio columns of a table: (label, subject, other) with the first series over
/// every other one, then each further floe target ("floe-pg-s3") over every target
/// that is not floe.
fn ratio_columns<'a>(targets: &[&'a str], lead: &'a str) -> Vec<(&'a str, usize, usize)> {
    let is_floe = |i: usize| i > 0 && targets[i].starts_with("floe-");
    let mut out: Vec<_> = (1..targets.len()).map(|o| (lead, 0, o)).collect();
    for s in (1..targets.len()).filter(|i| is_floe(*i)) {
        out.extend((1..targets.len()).filter(|o| !is_floe(*o)).map(|o| (targets[s], s, o)));
    }
    out
}
