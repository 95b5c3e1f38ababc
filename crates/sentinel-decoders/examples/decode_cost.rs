//! Measures what one decode costs, fresh runtime included:
//! `cargo run --release -p sentinel-decoders --example decode_cost`.

use std::error::Error;
use std::time::{Duration, Instant};

use sentinel_decoders::{Limits, Uplink, check, decode};
use time::macros::datetime;

const CLIMATE: &str = r#"
function decodeUplink(input) {
  var raw = (input.bytes[0] << 8) | input.bytes[1];
  if (raw & 0x8000) { raw -= 0x10000; }
  return { data: { temperature: raw / 10, humidity: input.bytes[2] } };
}
"#;

const RUNS: u32 = 2000;

/// Mean and slowest time of `RUNS` calls, after a warm-up.
fn time_runs(
    mut run: impl FnMut() -> Result<(), Box<dyn Error>>,
) -> Result<(Duration, Duration), Box<dyn Error>> {
    for _ in 0..50 {
        run()?;
    }
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    for _ in 0..RUNS {
        let one = Instant::now();
        run()?;
        slowest = slowest.max(one.elapsed());
    }
    Ok((start.elapsed() / RUNS, slowest))
}

fn main() -> Result<(), Box<dyn Error>> {
    // A generous time limit, so that a busy machine slows the numbers down
    // rather than failing the run.
    let limits = Limits {
        time: Duration::from_secs(10),
        ..Limits::default()
    };
    let uplink = Uplink {
        bytes: &[0x00, 0xD7, 0x37],
        f_port: 2,
        recv_time: datetime!(2024-05-01 12:00 UTC),
    };
    let empty = time_runs(|| Ok(check("function decodeUplink(input) {}", &limits)?))?;
    let full = time_runs(|| {
        decode(CLIMATE, &uplink, &limits)?;
        Ok(())
    })?;
    println!(
        "fresh runtime + context + compile (check of an empty decoder): mean {:?}, slowest {:?}",
        empty.0, empty.1
    );
    println!(
        "full decode of a small temperature/humidity decoder:          mean {:?}, slowest {:?}",
        full.0, full.1
    );
    println!("({RUNS} runs each, one thread)");
    Ok(())
}
