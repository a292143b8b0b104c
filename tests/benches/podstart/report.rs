//! The bench's one table: pod start latency of noderun against the floor
//! (p50, p99, and for a burst the time until all were Running) with the
//! ratios, then where the time went, phase by phase, for both.

use crate::cpu::CpuTicks;
use crate::floor::FloorSample;
use crate::stats::{ms, p50_p99, percentile, ratio};
use crate::Sample;

/// A section's phases: each phase's name and every pod's value.
type Phases = Vec<(&'static str, Vec<i64>)>;

/// One run of pods (sequential or a burst), ours and the floor's.
#[derive(Debug)]
pub struct Section {
    title: String,
    burst: bool,
    ours: Vec<Sample>,
    floor: Option<Vec<FloorSample>>,
    /// The CPU spent while our pods started.
    cpu: Option<CpuTicks>,
}

impl Section {
    pub fn new(
        title: String,
        burst: bool,
        ours: Vec<Sample>,
        floor: Option<Vec<FloorSample>>,
    ) -> Section {
        Section {
            title,
            burst,
            ours,
            floor,
            cpu: None,
        }
    }

    pub fn with_cpu(self, cpu: CpuTicks) -> Section {
        Section {
            cpu: Some(cpu),
            ..self
        }
    }

    fn our_latencies(&self) -> Vec<i64> {
        self.ours.iter().map(|s| s.running - s.created).collect()
    }

    fn floor_latencies(&self) -> Option<Vec<i64>> {
        let f = self.floor.as_ref()?;
        Some(
            f.iter()
                .map(|s| s.netns + s.cni + s.create + s.start)
                .collect(),
        )
    }

    /// First create to last Running (a burst's "all Running within").
    fn our_span(&self) -> Option<i64> {
        let first = self.ours.iter().map(|s| s.created).min()?;
        let last = self.ours.iter().map(|s| s.running).max()?;
        Some(last - first)
    }

    fn floor_span(&self) -> Option<i64> {
        let f = self.floor.as_ref()?;
        let first = f.iter().map(|s| s.begin).min()?;
        let last = f
            .iter()
            .map(|s| s.begin + s.netns + s.cni + s.create + s.start)
            .max()?;
        Some(last - first)
    }

    /// Our phases: name and each pod's value (pods without a record from
    /// the daemon have none for the daemon's phases).
    fn our_phases(&self) -> Phases {
        type Phase = fn(&Sample) -> Option<i64>;
        let phases: [(&str, Phase); 10] = [
            ("schedule (create -> bound on watch)", |s| {
                Some(s.bound? - s.created)
            }),
            ("dispatch (bound -> worker has it)", |s| {
                Some(s.agent.as_ref()?.seen_us - s.bound?)
            }),
            ("queue (worker -> start begins)", |s| {
                let a = s.agent.as_ref()?;
                Some(a.begin_us - a.seen_us)
            }),
            ("sandbox", |s| Some(s.agent.as_ref()?.sandbox_us)),
            ("network", |s| Some(s.agent.as_ref()?.network_us)),
            ("rootfs", |s| Some(s.agent.as_ref()?.rootfs_us)),
            ("container create", |s| Some(s.agent.as_ref()?.create_us)),
            ("container start", |s| Some(s.agent.as_ref()?.start_us)),
            ("status (started -> Running on watch)", |s| {
                Some(s.running - s.agent.as_ref()?.started_us)
            }),
            ("total", |s| Some(s.running - s.created)),
        ];
        phases
            .iter()
            .map(|(name, f)| (*name, self.ours.iter().filter_map(f).collect()))
            .collect()
    }

    fn floor_phases(&self) -> Phases {
        type Phase = fn(&FloorSample) -> i64;
        let phases: [(&str, Phase); 5] = [
            ("netns", |s| s.netns),
            ("CNI ADD (bridge + host-local)", |s| s.cni),
            ("crun create (config written)", |s| s.create),
            ("crun start", |s| s.start),
            ("total", |s| s.netns + s.cni + s.create + s.start),
        ];
        let samples = self.floor.as_deref().unwrap_or_default();
        phases
            .iter()
            .map(|(name, f)| (*name, samples.iter().map(f).collect()))
            .collect()
    }
}

/// Every section, printed together.
#[derive(Debug, Default)]
pub struct Table {
    sections: Vec<Section>,
}

impl Table {
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    pub fn print(&self) {
        println!();
        println!("pod start latency, ms: noderun from the create request to Running on the watch;");
        println!("floor (crun + CNI bridge) from netns creation to `crun start` returned");
        println!(
            "{:<16} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>7} {:>7} {:>7}",
            "",
            "ours p50",
            "p95",
            "p99",
            "all",
            "floor p50",
            "p99",
            "all",
            "x p50",
            "x p99",
            "x all"
        );
        for s in &self.sections {
            let (o50, o99) = p50_p99(&s.our_latencies());
            let o95 = percentile(&s.our_latencies(), 0.95);
            let (f50, f99) = s.floor_latencies().map_or((None, None), |f| p50_p99(&f));
            let (oall, fall) = if s.burst {
                (s.our_span(), s.floor_span())
            } else {
                (None, None)
            };
            println!(
                "{:<16} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>7} {:>7} {:>7}",
                s.title,
                ms(o50),
                ms(o95),
                ms(o99),
                ms(oall),
                ms(f50),
                ms(f99),
                ms(fall),
                ratio(o50, f50),
                ratio(o99, f99),
                ratio(oall, fall)
            );
        }
        println!();
        println!("CPU while our pods started (create of the first to Running of the last):");
        for s in &self.sections {
            if let Some(cpu) = &s.cpu {
                println!("{:<16} {}", s.title, cpu.describe());
            }
        }
        self.print_phases(
            "noderun phases, ms (p50 / p99 per pod)",
            Section::our_phases,
        );
        self.print_phases(
            "floor phases, ms (p50 / p99 per pod)",
            Section::floor_phases,
        );
        let missing: usize = self
            .sections
            .iter()
            .map(|s| s.ours.iter().filter(|x| x.agent.is_none()).count())
            .sum();
        if missing > 0 {
            println!(
                "({missing} pod(s) had no start record in the noderun log; left out of its phases)"
            );
        }
    }

    fn print_phases(&self, title: &str, phases: fn(&Section) -> Phases) {
        println!();
        print!("{title:<38}");
        for s in &self.sections {
            print!(" | {:>19}", s.title);
        }
        println!();
        let columns: Vec<_> = self.sections.iter().map(phases).collect();
        let Some(first) = columns.first() else {
            return;
        };
        for (row, (name, _)) in first.iter().enumerate() {
            print!("{name:<38}");
            for column in &columns {
                let (p50, p99) = p50_p99(&column[row].1);
                print!(" | {:>9} / {:>7}", ms(p50), ms(p99));
            }
            println!();
        }
    }
}
