//! Writing metric families through the `prometheus` crate's text encoder.
//!
//! The series are built as the crate's `proto` data model (as a custom
//! `Collector` would) rather than with `GaugeVec` & co: the typed vectors sort
//! label names alphabetically, but drbd-reactor prints them in a fixed order
//! (`name` first) that dashboards were written against, and counters that
//! mirror DRBD's own counters must be *set*, which typed counters cannot.
//!
//! A family is encoded in chunks so that a large family (one series per
//! replication state of thousands of peer devices) never holds all its
//! series in memory at once; chunks after the first are encoded without help
//! text and their single `# TYPE` line is dropped.

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::TextEncoder;

use super::MetricsError;

/// Series encoded per chunk.
const CHUNK: usize = 512;

/// The fixed parts of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Spec {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Label names, in the order they are printed.
    pub labels: &'static [&'static str],
}

/// The metric types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Gauge,
    Counter,
}

/// How state enums and flag sets are exported (`[metrics] enum-series`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnumSeries {
    /// One series for the value that holds (value 1); the old one
    /// disappears on a change. Flag sets: one series per flag that holds.
    /// Counters by cause: a series from the cause's first occurrence.
    #[default]
    Current,
    /// One series per known value (1 for the current, 0 for the others),
    /// flag sets one series per known flag, counters by cause from 0: the
    /// one-hot form of drbd-reactor's `enums = true`.
    All,
}

impl EnumSeries {
    /// The configuration value: `current` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::All => "all",
        }
    }
}

/// Appends one family's series to a text buffer.
pub(super) struct FamilyWriter<'a> {
    spec: &'a Spec,
    out: &'a mut String,
    pending: Vec<Metric>,
    header_written: bool,
    enum_series: EnumSeries,
}

impl<'a> FamilyWriter<'a> {
    pub(super) fn new(spec: &'a Spec, out: &'a mut String) -> Self {
        Self {
            spec,
            out,
            pending: Vec::new(),
            header_written: false,
            enum_series: EnumSeries::default(),
        }
    }

    /// The same writer exporting enums in `form`.
    pub(super) fn with_enum_series(mut self, form: EnumSeries) -> Self {
        self.enum_series = form;
        self
    }

    /// How this writer exports enums, flag sets and counters by cause.
    pub(super) fn enum_series(&self) -> EnumSeries {
        self.enum_series
    }

    /// A writer of series lines only (no `# HELP`/`# TYPE`): a chunk of a
    /// family whose header is written elsewhere (see [`header`]).
    pub(super) fn headerless(spec: &'a Spec, out: &'a mut String) -> Self {
        Self {
            header_written: true,
            ..Self::new(spec, out)
        }
    }

    /// Adds one series; `values` are the label values in `spec.labels` order.
    pub(super) fn add(&mut self, values: &[&str], value: f64) -> Result<(), MetricsError> {
        if values.len() != self.spec.labels.len() {
            return Err(MetricsError::LabelCount {
                family: self.spec.name,
                expected: self.spec.labels.len(),
                got: values.len(),
            });
        }
        let labels = self
            .spec
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect();
        let mut metric = Metric::from_label(labels);
        match self.spec.kind {
            Kind::Gauge => {
                let mut gauge = Gauge::default();
                gauge.set_value(value);
                metric.set_gauge(gauge);
            }
            Kind::Counter => {
                let mut counter = Counter::default();
                counter.set_value(value);
                metric.set_counter(counter);
            }
        }
        self.pending.push(metric);
        if self.pending.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds a 0/1 series.
    pub(super) fn add_bool(&mut self, values: &[&str], value: bool) -> Result<(), MetricsError> {
        self.add(values, if value { 1.0 } else { 0.0 })
    }

    /// Adds an integer series (exact up to 2^53).
    pub(super) fn add_u64(&mut self, values: &[&str], value: u64) -> Result<(), MetricsError> {
        self.add(values, value as f64)
    }

    /// Writes what is pending; a family without series writes nothing.
    pub(super) fn finish(mut self) -> Result<(), MetricsError> {
        self.flush()
    }

    fn flush(&mut self) -> Result<(), MetricsError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut family = MetricFamily::default();
        family.set_name(self.spec.name.to_owned());
        family.set_field_type(match self.spec.kind {
            Kind::Gauge => MetricType::GAUGE,
            Kind::Counter => MetricType::COUNTER,
        });
        family.set_metric(std::mem::take(&mut self.pending));
        let encoder = TextEncoder::new();
        if !self.header_written {
            family.set_help(self.spec.help.to_owned());
            encoder.encode_utf8(std::slice::from_ref(&family), self.out)?;
            self.header_written = true;
            return Ok(());
        }
        // Without help the encoder writes exactly one header line: `# TYPE`.
        let mut chunk = String::new();
        encoder.encode_utf8(std::slice::from_ref(&family), &mut chunk)?;
        let body = chunk.split_once('\n').map_or("", |(_, body)| body);
        self.out.push_str(body);
        Ok(())
    }
}

/// The `# HELP` and `# TYPE` lines of a family, as the encoder writes them
/// (it refuses a family without series, so one is encoded and dropped).
pub(super) fn header(spec: &Spec) -> Result<String, MetricsError> {
    let mut text = String::new();
    let mut writer = FamilyWriter::new(spec, &mut text);
    let values = vec![""; spec.labels.len()];
    writer.add(&values, 0.0)?;
    writer.finish()?;
    // The series line is the last line; the header lines start with `#`.
    let header_len: usize = text
        .split_inclusive('\n')
        .take_while(|line| line.starts_with('#'))
        .map(str::len)
        .sum();
    text.truncate(header_len);
    Ok(text)
}

/// Writes one family filled by `fill` (enums in the default form).
pub(super) fn write_family<F>(out: &mut String, spec: &Spec, fill: F) -> Result<(), MetricsError>
where
    F: FnOnce(&mut FamilyWriter<'_>) -> Result<(), MetricsError>,
{
    write_family_in(out, spec, EnumSeries::default(), fill)
}

/// Writes one family filled by `fill`, enums in `form`.
pub(super) fn write_family_in<F>(
    out: &mut String,
    spec: &Spec,
    form: EnumSeries,
    fill: F,
) -> Result<(), MetricsError>
where
    F: FnOnce(&mut FamilyWriter<'_>) -> Result<(), MetricsError>,
{
    let mut writer = FamilyWriter::new(spec, out).with_enum_series(form);
    fill(&mut writer)?;
    writer.finish()
}

/// A DRBD state enum exported as one series per known value.
pub(super) trait EnumValue: PartialEq + Sized + 'static {
    fn known() -> &'static [Self];
    fn wire(&self) -> &str;
    fn is_other(&self) -> bool;
}

macro_rules! enum_value {
    ($($name:ty),+) => {
        $(impl EnumValue for $name {
            fn known() -> &'static [Self] {
                <$name>::KNOWN
            }
            fn wire(&self) -> &str {
                self.as_str()
            }
            fn is_other(&self) -> bool {
                !self.is_known()
            }
        })+
    };
}

enum_value!(
    crate::events2::Role,
    crate::events2::DiskState,
    crate::events2::ConnectionState,
    crate::events2::ReplicationState,
    crate::events2::ResyncSuspendReason
);

/// [`EnumSeries::All`]: one series per known value of `T` (1 for
/// `current`, 0 for the others), plus a series with 1 for a `current` this
/// version does not know. [`EnumSeries::Current`]: only the series of
/// `current`, 1. The value label comes last.
pub(super) fn add_enum<T: EnumValue>(
    writer: &mut FamilyWriter<'_>,
    labels: &[&str],
    current: &T,
) -> Result<(), MetricsError> {
    let mut values: Vec<&str> = Vec::with_capacity(labels.len() + 1);
    values.extend_from_slice(labels);
    values.push("");
    let last = labels.len();
    if writer.enum_series() == EnumSeries::Current {
        values[last] = current.wire();
        return writer.add(&values, 1.0);
    }
    for known in T::known() {
        values[last] = known.wire();
        writer.add_bool(&values, known == current)?;
    }
    if current.is_other() {
        values[last] = current.wire();
        writer.add(&values, 1.0)?;
    }
    Ok(())
}

/// Flags such as `resync-suspended:user,peer`. [`EnumSeries::All`]: one
/// series per known value of `T`, 1 for each value in `set`, and a series
/// (1) for each value this version does not know. [`EnumSeries::Current`]:
/// one series (1) per value in `set`, none for an empty set.
pub(super) fn add_flags<T: EnumValue>(
    writer: &mut FamilyWriter<'_>,
    labels: &[&str],
    set: &[T],
) -> Result<(), MetricsError> {
    let mut values: Vec<&str> = Vec::with_capacity(labels.len() + 1);
    values.extend_from_slice(labels);
    values.push("");
    let last = labels.len();
    let all = writer.enum_series() == EnumSeries::All;
    if all {
        for known in T::known() {
            values[last] = known.wire();
            writer.add_bool(&values, set.contains(known))?;
        }
    }
    for (index, other) in set.iter().enumerate() {
        // Once per value, even if a list repeats it.
        if (!all || other.is_other()) && !set[..index].contains(other) {
            values[last] = other.wire();
            writer.add(&values, 1.0)?;
        }
    }
    Ok(())
}

/// A family: its spec and how to fill it from an input `I`.
pub(super) struct Def<I> {
    pub spec: Spec,
    pub fill: fn(&I, &mut FamilyWriter<'_>) -> Result<(), MetricsError>,
}

/// Writes the families sorted by name (the order Prometheus' own clients use).
pub(super) fn write_sorted<I>(
    out: &mut String,
    mut defs: Vec<Def<I>>,
    input: &I,
) -> Result<(), MetricsError> {
    defs.sort_by_key(|def| def.spec.name);
    for def in &defs {
        write_family(out, &def.spec, |w| (def.fill)(input, w))?;
    }
    Ok(())
}

/// Each family rendered on its own, with its name (for merging the
/// families of inputs of different types in name order).
pub(super) fn render_each<I>(
    defs: Vec<Def<I>>,
    input: &I,
) -> Result<Vec<(&'static str, String)>, MetricsError> {
    render_each_in(defs, input, EnumSeries::default())
}

/// [`render_each`] with enums in `form`.
pub(super) fn render_each_in<I>(
    defs: Vec<Def<I>>,
    input: &I,
    form: EnumSeries,
) -> Result<Vec<(&'static str, String)>, MetricsError> {
    defs.iter()
        .map(|def| {
            let mut text = String::new();
            write_family_in(&mut text, &def.spec, form, |w| (def.fill)(input, w))?;
            Ok((def.spec.name, text))
        })
        .collect()
}
