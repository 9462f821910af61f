//! Rewrites `docs/benchmarks.md`.

use std::{fmt::Write, path::Path};

use crate::{Figures, machine};

/// What each figure should reach, from the issues that set the targets.
fn target(name: &str) -> &'static str {
    match name {
        "append_64_writers_events_per_s" => ">= 30,000",
        "append_batch100_1_writer_events_per_s" | "append_batch100_8_writers_events_per_s" => ">= 150,000",
        "read_all_events_per_s" => ">= 1,000,000",
        "rebuild_events_per_s" => ">= 100,000",
        "grpc_send_reply_per_s" => ">= 10,000",
        "grpc_send_reply_p99" => "< 10 ms",
        "grpc_inbox_per_s" => ">= 20,000",
        "webhook_posts_per_s" => ">= 5,000",
        _ => "",
    }
}

pub fn write(out: &Path, dir: &Path, sections: &[(&str, Figures)]) -> anyhow::Result<()> {
    let mut text = String::new();
    writeln!(text, "# Benchmarks\n")?;
    writeln!(
        text,
        "Written by `make bench` (`palaver-bench report`) on {}. Do not edit by hand: run it again.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(text, "## Machine\n")?;
    for line in machine::describe(dir) {
        writeln!(text, "- {line}")?;
    }
    for (area, figures) in sections {
        writeln!(text, "\n## `{area}`\n")?;
        writeln!(text, "| figure | value | unit | target |")?;
        writeln!(text, "|---|---:|---|---|")?;
        for figure in &figures.0 {
            let value = figure.to_string();
            let value = value.split_whitespace().nth(1).unwrap_or_default();
            writeln!(
                text,
                "| `{}` | {} | {} | {} |",
                figure.name,
                value,
                figure.unit,
                target(&figure.name)
            )?;
        }
    }
    writeln!(
        text,
        "\nHow each figure is measured is documented in `crates/bench/src/<area>.rs`."
    )?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, text)?;
    Ok(())
}
