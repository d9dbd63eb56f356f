//! The Markdown report: tables of medians, each peer's ratio to kekbit.

use std::fmt::Write as _;

/// How a cell's values are shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// Records per second of `bytes`-byte records: shown as M/s and GB/s.
    Records { bytes: usize },
    /// Records per second, without a byte rate.
    RecordsOnly,
    /// Nanoseconds.
    Nanos,
    /// Bytes (disk or memory): shown as MB.
    Bytes,
    /// A plain quantity, shown with one decimal.
    Count,
}

/// The row all ratios are taken against.
pub const BASELINE: &str = "kekbit";

#[derive(Debug)]
struct Column {
    name: String,
    unit: Unit,
}

/// One table: systems down, columns across.
#[derive(Debug)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// One paragraph under the heading: what was measured, and how.
    pub note: String,
    columns: Vec<Column>,
    rows: Vec<String>,
    values: Vec<(usize, usize, f64)>,
    /// The row ratios are taken against ([`BASELINE`] unless set).
    baseline: String,
}

impl Section {
    fn column(&mut self, name: &str, unit: Unit) -> usize {
        if let Some(i) = self.columns.iter().position(|c| c.name == name) {
            return i;
        }
        self.columns.push(Column {
            name: name.to_owned(),
            unit,
        });
        self.columns.len() - 1
    }

    fn row(&mut self, name: &str) -> usize {
        if let Some(i) = self.rows.iter().position(|r| r == name) {
            return i;
        }
        self.rows.push(name.to_owned());
        self.rows.len() - 1
    }

    /// The names of the columns, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The median of the values at (`row`, `column`), if any.
    pub fn median(&self, row: &str, column: &str) -> Option<f64> {
        let r = self.rows.iter().position(|x| x == row)?;
        let c = self.columns.iter().position(|x| x.name == column)?;
        let mut v: Vec<f64> = self
            .values
            .iter()
            .filter(|(rr, cc, _)| *rr == r && *cc == c)
            .map(|(_, _, x)| *x)
            .collect();
        median(&mut v)
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "### {}\n\n{}\n", self.title, self.note);
        out.push_str("| system |");
        for c in &self.columns {
            let _ = write!(out, " {} |", c.name);
        }
        out.push_str("\n|---|");
        for _ in &self.columns {
            out.push_str("---:|");
        }
        out.push('\n');
        for row in &self.rows {
            let _ = write!(out, "| {row} |");
            for c in &self.columns {
                let cell = match self.median(row, &c.name) {
                    None => "–".to_owned(),
                    Some(v) => {
                        let mut s = format_value(v, c.unit);
                        match self.median(&self.baseline, &c.name) {
                            Some(base) if *row != self.baseline && base > 0.0 => {
                                let _ = write!(s, " ({:.2}×)", v / base);
                            }
                            _ => {}
                        }
                        s
                    }
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out.push('\n');
    }
}

fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Records { bytes } => {
            format!("{} · {:.2} GB/s", rate(v), v * bytes as f64 / 1e9)
        }
        Unit::RecordsOnly => rate(v),
        Unit::Bytes => format!("{:.1} MB", v / 1e6),
        Unit::Nanos => {
            if v >= 1e6 {
                format!("{:.2} ms", v / 1e6)
            } else if v >= 1e4 {
                format!("{:.1} µs", v / 1e3)
            } else {
                format!("{v:.0} ns")
            }
        }
        Unit::Count => format!("{v:.1}"),
    }
}

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M/s", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k/s", v / 1e3)
    } else {
        format!("{v:.0} /s")
    }
}

/// The median of `v` (mean of the middle two for an even count).
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Every table of one run.
#[derive(Debug, Default)]
pub struct Report {
    sections: Vec<Section>,
    /// Prints every value to stderr as it is added.
    pub verbose: bool,
}

/// Names the measurement an error came from.
pub fn context<T>(what: &str, result: crate::Res<T>) -> crate::Res<T> {
    result.map_err(|e| crate::fail(format!("{what}: {e}")))
}

impl Report {
    /// Declares a table (idempotent), so tables appear in a fixed order.
    pub fn section(&mut self, title: &str, note: &str) {
        if !self.sections.iter().any(|s| s.title == title) {
            self.sections.push(Section {
                title: title.to_owned(),
                note: note.to_owned(),
                columns: Vec::new(),
                rows: Vec::new(),
                values: Vec::new(),
                baseline: BASELINE.to_owned(),
            });
        }
    }

    /// Takes the ratios of table `title` (declared before) against row
    /// `row` instead of [`BASELINE`].
    pub fn set_baseline(&mut self, title: &str, row: &str) {
        if let Some(s) = self.sections.iter_mut().find(|s| s.title == title) {
            row.clone_into(&mut s.baseline);
        }
    }

    /// Adds one repetition's value to a cell of table `title`.
    pub fn add(&mut self, title: &str, row: &str, column: &str, unit: Unit, value: f64) {
        self.section(title, "");
        if self.verbose {
            eprintln!(
                "  {title} | {row} | {column}: {}",
                format_value(value, unit)
            );
        }
        if let Some(s) = self.sections.iter_mut().find(|s| s.title == title) {
            let c = s.column(column, unit);
            let r = s.row(row);
            s.values.push((r, c, value));
        }
    }

    /// Table `title`, if it was declared.
    pub fn get(&self, title: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.title == title)
    }

    /// All tables, in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for s in self.sections.iter().filter(|s| !s.rows.is_empty()) {
            s.render(&mut out);
        }
        out
    }
}
