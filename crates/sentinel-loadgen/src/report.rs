//! A run's report as text tables (the JSON form is the [`Report`] serialized),
//! for a fleet run and for the MQTT run.

use std::fmt::Write;

use crate::fleet::Report;
use crate::loss::LossCheck;
use crate::mqtt;
use crate::stats::{EndpointStats, ErrorCount, Population};

fn latency_rows(out: &mut String, rows: &[EndpointStats]) {
    let _ = writeln!(
        out,
        "  {:<8} {:<30} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "devices", "endpoint", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for e in rows {
        let population = match e.population {
            Population::Clean => "clean",
            Population::Faulty => "faulty",
        };
        let _ = writeln!(
            out,
            "  {:<8} {:<30} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            population,
            e.endpoint,
            e.latency.count,
            e.latency.p50_ms,
            e.latency.p95_ms,
            e.latency.p99_ms,
            e.latency.max_ms
        );
    }
}

/// The report as a few aligned tables.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let o = &report.options;
    if o.enroll_only {
        let _ = writeln!(
            out,
            "{} devices enrolling, {} at a time",
            o.devices, o.startup_concurrency
        );
    } else {
        let _ = writeln!(
            out,
            "{} devices ({} misbehaving), telemetry every {:.1} s, {:.2} commands/s, window {:.1} s",
            o.devices,
            report.faulty_devices,
            o.telemetry_interval.as_secs_f64(),
            o.command_rate,
            report.window_seconds
        );
    }
    let e = &report.enrollment;
    let _ = writeln!(
        out,
        "enrollment: {} devices in {:.1} s = {:.0}/s (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms)",
        e.enrolled, e.seconds, e.per_second, e.latency.p50_ms, e.latency.p99_ms, e.latency.max_ms
    );
    let _ = writeln!(out, "ramp-up latencies:");
    latency_rows(&mut out, &report.ramp_endpoints);
    if !o.enroll_only {
        let _ = writeln!(
            out,
            "telemetry accepted: {} in the window = {:.0}/s",
            report.telemetry_acknowledged_in_window, report.telemetry_per_second
        );
        let _ = writeln!(out, "window latencies:");
        latency_rows(&mut out, &report.endpoints);
        let d = &report.command_delivery;
        let _ = writeln!(
            out,
            "commands: {} queued, {} received, {} undelivered; delivery (queue request sent -> poll answer arrived) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            report.commands_queued,
            report.commands_received,
            report.commands_undelivered,
            d.p50_ms,
            d.p99_ms,
            d.max_ms
        );
    }
    error_rows(&mut out, &report.errors);
    if report.faulty_devices > 0 {
        let _ = writeln!(
            out,
            "misbehaving devices: {} refusals as expected",
            report.expected_refusals
        );
    }
    if let Some(s) = &report.server {
        let _ = writeln!(
            out,
            "server: CPU {:.2} cores; RSS {:.0} MiB at the window's start, {:.0} MiB max, {:.0} MiB at its end; peak RSS (VmHWM) {:.0} MiB; {} open files",
            s.cpu_cores,
            s.rss_start_mib,
            s.rss_max_mib,
            s.rss_end_mib,
            s.peak_rss_mib,
            s.open_files
        );
    }
    if let Some(after) = report.rss_after_faults_mib {
        let _ = writeln!(
            out,
            "server RSS after the misbehaving devices left: {after:.0} MiB"
        );
    }
    let _ = writeln!(
        out,
        "load generator CPU: {:.2} cores",
        report.loadgen_cpu_cores
    );
    if let Some(loss) = &report.loss {
        loss_row(&mut out, loss);
    }
    out
}

fn error_rows(out: &mut String, errors: &[ErrorCount]) {
    if errors.is_empty() {
        let _ = writeln!(out, "errors: none");
        return;
    }
    let _ = writeln!(out, "errors:");
    for e in errors {
        let _ = writeln!(
            out,
            "  {:<8} {:<30} {:<18} {:>8}",
            format!("{:?}", e.population).to_lowercase(),
            e.endpoint,
            e.kind,
            e.count
        );
    }
}

fn loss_row(out: &mut String, loss: &LossCheck) {
    let _ = writeln!(
        out,
        "{} ({} devices; {} sequence gaps; {} unreadable; {} samples unconfirmed)",
        loss.line(),
        loss.devices_checked,
        loss.sequence_gaps,
        loss.unreadable,
        loss.unconfirmed
    );
}

/// The MQTT run's report: a line per phase, then latencies, errors and the loss check.
pub fn mqtt_text(report: &mqtt::Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", report.scheme, report.options.phases());
    let e = &report.enrollment;
    let _ = writeln!(
        out,
        "enrollment (HTTPS): {} devices in {:.1} s = {:.0}/s (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms)",
        e.enrolled, e.seconds, e.per_second, e.latency.p50_ms, e.latency.p99_ms, e.latency.max_ms
    );
    if let Some(idle) = &report.idle {
        let _ = writeln!(
            out,
            "idle: {} of {} connected in {:.1} s ({} at a time)",
            idle.connected, idle.requested, idle.connect_seconds, idle.concurrency
        );
        if let Some(m) = &idle.server {
            let _ = writeln!(
                out,
                "idle: server RSS {:.0} MiB -> {:.0} MiB (half) -> {:.0} MiB: {:.1} KiB per connection overall, {:.1} KiB each for the second half; {} open files",
                m.rss_before_mib,
                m.rss_half_mib,
                m.rss_after_mib,
                m.kib_per_connection,
                m.kib_per_connection_second_half,
                m.open_files
            );
        }
    }
    if let Some(t) = &report.telemetry {
        let _ = writeln!(
            out,
            "telemetry: {} devices x {} in flight: {} QoS 1 messages acknowledged (each stored) in {:.1} s = {:.0} msg/s; server CPU {} cores, load generator {:.2}",
            t.publishers,
            t.window,
            t.acknowledged,
            t.seconds,
            t.per_second,
            t.server_cpu_cores
                .map_or_else(|| "—".to_owned(), |c| format!("{c:.2}")),
            t.loadgen_cpu_cores
        );
    }
    if let Some(p) = &report.push {
        let d = &p.delivery;
        let _ = writeln!(
            out,
            "push: {} queued to {} subscribed devices, {} received, {} undelivered; queue request sent -> PUBLISH received p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            p.commands_queued,
            p.subscribed,
            p.commands_received,
            p.commands_undelivered,
            d.p50_ms,
            d.p95_ms,
            d.p99_ms,
            d.max_ms
        );
    }
    let _ = writeln!(out, "latencies:");
    latency_rows(&mut out, &report.endpoints);
    error_rows(&mut out, &report.errors);
    if let Some(peak) = report.server_peak_rss_mib {
        let _ = writeln!(out, "server peak RSS (VmHWM): {peak:.0} MiB");
    }
    if let Some(loss) = &report.loss {
        loss_row(&mut out, loss);
    }
    out
}
