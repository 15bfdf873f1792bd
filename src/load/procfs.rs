//! CPU time and memory of a process, read from Linux's /proc: the server's, and the tool's own.
//!
//! CPU time is the sum of every thread's `se.sum_exec_runtime` in `/proc/PID/task/*/sched`
//! (nanoseconds) where the kernel provides it, else `utime + stime` from `/proc/PID/stat` (10 ms
//! ticks). The user/system split always comes from `/proc/PID/stat`.
//!
//! A thread's `sum_exec_runtime` counts its current slice only at the next scheduler tick or
//! switch, so a reading taken while the server is still at work misses up to a tick of it (a
//! whole short run, once: 30 connections in a millisecond read as 0 ns). The reading after a
//! run is therefore taken once the servers have settled ([`ProcessGroup::sample_settled`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Nanoseconds per clock tick of `/proc/PID/stat`: Linux reports them in USER_HZ, which is 100 on
/// every architecture it exports to user space.
const NS_PER_TICK: u64 = 10_000_000;

/// How far apart two readings must agree for a process to count as settled: more than a
/// scheduler tick (10 ms at the lowest common rate, 100 Hz).
const SETTLE_STEP: Duration = Duration::from_millis(12);
/// The longest wait for processes to settle (a cluster's nodes wake on their own every second).
const SETTLE_MOST: Duration = Duration::from_millis(300);

/// Which process to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    dir: PathBuf,
}

impl Process {
    /// The process with id `pid`.
    pub fn with_pid(pid: u32) -> Process {
        Process {
            dir: PathBuf::from(format!("/proc/{pid}")),
        }
    }

    /// This process.
    pub fn current() -> Process {
        Process {
            dir: PathBuf::from("/proc/self"),
        }
    }

    /// Reads its CPU time and memory now.
    pub fn sample(&self) -> io::Result<Sample> {
        let stat = fs::read_to_string(self.dir.join("stat"))?;
        let (user_ticks, system_ticks) =
            parse_stat_times(&stat).ok_or_else(|| malformed("stat"))?;
        let status = fs::read_to_string(self.dir.join("status"))?;
        let rss = status_kib(&status, "VmRSS:").ok_or_else(|| malformed("status"))?;
        let peak_rss = status_kib(&status, "VmHWM:").unwrap_or(rss);
        let precise = threads_runtime_ns(&self.dir.join("task"));
        Ok(Sample {
            precise_cpu_ns: precise,
            user_ns: user_ticks * NS_PER_TICK,
            system_ns: system_ticks * NS_PER_TICK,
            rss_bytes: rss * 1024,
            peak_rss_bytes: peak_rss * 1024,
        })
    }
}

/// Several processes read together: the server, or every node of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessGroup {
    members: Vec<(u32, Process)>,
}

impl ProcessGroup {
    /// The processes with these ids; `None` if there are none.
    pub fn new(pids: &[u32]) -> Option<ProcessGroup> {
        (!pids.is_empty()).then(|| ProcessGroup {
            members: pids
                .iter()
                .map(|&pid| (pid, Process::with_pid(pid)))
                .collect(),
        })
    }

    /// Every member's sample, in the order given; the first that cannot be read names its pid.
    pub fn sample_each(&self) -> Result<Vec<Sample>, (u32, io::Error)> {
        self.members
            .iter()
            .map(|(pid, process)| process.sample().map_err(|e| (*pid, e)))
            .collect()
    }

    /// Every member's sample once their CPU times stop moving (two readings [`SETTLE_STEP`]
    /// apart agree), or after [`SETTLE_MOST`]: what a run made them do, counted whole.
    pub fn sample_settled(&self) -> Result<Vec<Sample>, (u32, io::Error)> {
        let deadline = Instant::now() + SETTLE_MOST;
        let mut last = self.sample_each()?;
        loop {
            std::thread::sleep(SETTLE_STEP);
            let next = self.sample_each()?;
            let settled =
                (next.iter().zip(&last)).all(|(a, b)| a.precise_cpu_ns == b.precise_cpu_ns);
            if settled || Instant::now() >= deadline {
                return Ok(next);
            }
            last = next;
        }
    }

    /// The members' ids, in order.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(|(pid, _)| *pid).collect()
    }
}

/// A process's CPU time and memory at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used so far by every thread, to the nanosecond, if the kernel keeps scheduler
    /// statistics.
    pub precise_cpu_ns: Option<u64>,
    /// User CPU time, to the tick.
    pub user_ns: u64,
    /// System CPU time, to the tick.
    pub system_ns: u64,
    /// Resident memory now.
    pub rss_bytes: u64,
    /// The highest resident memory so far.
    pub peak_rss_bytes: u64,
}

/// CPU time used between two samples of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuUsed {
    /// User and system together.
    pub total_ns: u64,
    /// Whether `total_ns` is to the nanosecond rather than to the 10 ms tick.
    pub precise: bool,
    /// User time, to the tick.
    pub user_ns: u64,
    /// System time, to the tick.
    pub system_ns: u64,
}

impl Sample {
    /// Several processes' samples added up (precise only if every one is); `None` if there are
    /// none.
    pub fn total(samples: &[Sample]) -> Option<Sample> {
        let (first, rest) = samples.split_first()?;
        Some(rest.iter().fold(*first, |sum, s| Sample {
            precise_cpu_ns: sum.precise_cpu_ns.zip(s.precise_cpu_ns).map(|(a, b)| a + b),
            user_ns: sum.user_ns + s.user_ns,
            system_ns: sum.system_ns + s.system_ns,
            rss_bytes: sum.rss_bytes + s.rss_bytes,
            peak_rss_bytes: sum.peak_rss_bytes + s.peak_rss_bytes,
        }))
    }

    /// The CPU time used from `earlier` to this sample.
    pub fn cpu_since(&self, earlier: &Sample) -> CpuUsed {
        let user_ns = self.user_ns.saturating_sub(earlier.user_ns);
        let system_ns = self.system_ns.saturating_sub(earlier.system_ns);
        let precise = match (self.precise_cpu_ns, earlier.precise_cpu_ns) {
            (Some(now), Some(then)) => Some(now.saturating_sub(then)),
            _ => None,
        };
        CpuUsed {
            total_ns: precise.unwrap_or(user_ns + system_ns),
            precise: precise.is_some(),
            user_ns,
            system_ns,
        }
    }
}

/// The whole machine's CPU time so far, from the first line of `/proc/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineSample {
    /// Time any CPU spent not idle (user, nice, system, irq, softirq, steal), to the tick.
    pub busy_ns: u64,
    /// Time the hypervisor ran something else while a CPU here wanted to run, to the tick.
    pub steal_ns: u64,
}

impl MachineSample {
    /// Reads `/proc/stat` now.
    pub fn read() -> io::Result<MachineSample> {
        let stat = fs::read_to_string("/proc/stat")?;
        parse_machine(&stat).ok_or_else(|| malformed("../stat"))
    }
}

/// The `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal ..., in ticks.
fn parse_machine(stat: &str) -> Option<MachineSample> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    Some(MachineSample {
        busy_ns: busy * NS_PER_TICK,
        steal_ns: field(7) * NS_PER_TICK,
    })
}

fn malformed(file: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected /proc/PID/{file}"),
    )
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/PID/stat` line, in ticks. The command name
/// in parentheses may hold spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (the state) is the first after the name, so field N is at index N - 3.
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some((user, system))
}

/// The value in KiB of a `/proc/PID/status` line such as `VmRSS:     1234 kB`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The sum of every thread's run time, if the kernel keeps scheduler statistics. A thread that
/// ends between the listing and the reading of its file is left out (its file is gone), rather
/// than the whole sample falling back to ticks.
fn threads_runtime_ns(task_dir: &Path) -> Option<u64> {
    let mut total = 0;
    for entry in fs::read_dir(task_dir).ok()? {
        let sched = match fs::read_to_string(entry.ok()?.path().join("sched")) {
            Ok(sched) => sched,
            Err(e) if thread_gone(&e) => continue,
            Err(_) => return None,
        };
        total += sched_runtime_ns(&sched)?;
    }
    Some(total)
}

/// Whether reading a thread's file failed because the thread has ended.
fn thread_gone(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound
        || error.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

/// `se.sum_exec_runtime` of a `/proc/PID/task/TID/sched` file (milliseconds with six decimals),
/// in nanoseconds.
fn sched_runtime_ns(sched: &str) -> Option<u64> {
    let line = sched
        .lines()
        .find(|line| line.starts_with("se.sum_exec_runtime"))?;
    let value = line.split(':').nth(1)?.trim();
    let (millis, fraction) = value.split_once('.').unwrap_or((value, "0"));
    let millis: u64 = millis.parse().ok()?;
    // Six decimals of a millisecond are nanoseconds; pad or cut to exactly six.
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(6)
        .collect();
    let nanos: u64 = digits.parse().ok()?;
    Some(millis * 1_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_of_samples_adds_up_and_is_precise_only_if_every_member_is() {
        let sample = |precise, user| Sample {
            precise_cpu_ns: precise,
            user_ns: user,
            system_ns: 5,
            rss_bytes: 100,
            peak_rss_bytes: 200,
        };
        let sum = Sample::total(&[sample(Some(10), 1), sample(Some(20), 2)]).unwrap();
        assert_eq!(
            sum,
            Sample {
                precise_cpu_ns: Some(30),
                user_ns: 3,
                system_ns: 10,
                rss_bytes: 200,
                peak_rss_bytes: 400
            }
        );
        let mixed = Sample::total(&[sample(Some(10), 1), sample(None, 2)]).unwrap();
        assert_eq!(mixed.precise_cpu_ns, None);
        assert_eq!(Sample::total(&[]), None);
        assert!(ProcessGroup::new(&[]).is_none());
        let me = ProcessGroup::new(&[std::process::id(), std::process::id()]).unwrap();
        assert_eq!(me.sample_each().map(|s| s.len()).ok(), Some(2));
        assert_eq!(me.pids(), [std::process::id(); 2]);
    }

    #[test]
    fn stat_times_are_read_after_a_command_name_with_spaces_and_parens() {
        let stat = "4242 (chat d) (x)) S 1 4242 4242 0 -1 4194560 4017 55600 1 61 \
                    123 45 37 21 20 0 1 0 123801 5124096 973";
        assert_eq!(parse_stat_times(stat), Some((123, 45)));
        assert_eq!(parse_stat_times("4242 (short) S 1 2"), None);
    }

    #[test]
    fn status_values_are_read_in_kib() {
        let status = "Name:\tchatd\nVmHWM:\t   20480 kB\nVmRSS:\t    8192 kB\nThreads:\t2\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(8192));
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn scheduler_run_time_is_read_to_the_nanosecond() {
        let sched = "chatd (704, #threads: 1)\n-----\nse.exec_start   :   1307013.491848\n\
                     se.sum_exec_runtime                          :          1234.567891\n";
        assert_eq!(sched_runtime_ns(sched), Some(1_234_567_891));
        assert_eq!(
            sched_runtime_ns("se.sum_exec_runtime : 2.5\n"),
            Some(2_500_000)
        );
        assert_eq!(
            sched_runtime_ns("se.sum_exec_runtime : 7\n"),
            Some(7_000_000)
        );
        assert_eq!(sched_runtime_ns("se.vruntime : 1.0\n"), None);
    }

    #[test]
    fn machine_time_counts_everything_but_idle_and_iowait() {
        let stat = "cpu  300 1 50 9000 20 2 3 4 0 0\ncpu0 150 0 25 4500 10 1 1 2 0 0\n";
        assert_eq!(
            parse_machine(stat),
            Some(MachineSample {
                busy_ns: 360 * NS_PER_TICK,
                steal_ns: 4 * NS_PER_TICK,
            })
        );
        assert_eq!(parse_machine("cpu0 1 2 3\n"), None);
        assert!(MachineSample::read().is_ok());
    }

    #[test]
    fn this_process_can_be_sampled() {
        let started = std::time::Instant::now();
        let before = Process::current().sample().unwrap();
        assert!(before.rss_bytes > 0);
        assert!(before.peak_rss_bytes >= before.rss_bytes);
        let after = Process::current().sample().unwrap();
        let used = after.cpu_since(&before);
        assert_eq!(used.precise, before.precise_cpu_ns.is_some());
        // The other tests run in this process too: its CPU time is bounded by the cores, not 0.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let elapsed_ns = started.elapsed().as_nanos() as u64;
        assert!(used.user_ns + used.system_ns <= cores * elapsed_ns + 2 * NS_PER_TICK);
    }

    #[test]
    fn cpu_used_falls_back_to_ticks_unless_both_samples_are_precise() {
        let sample = |precise, ticks| Sample {
            precise_cpu_ns: precise,
            user_ns: ticks * NS_PER_TICK,
            system_ns: NS_PER_TICK,
            rss_bytes: 0,
            peak_rss_bytes: 0,
        };
        let used = sample(Some(95_000_000), 9).cpu_since(&sample(Some(1_000), 1));
        assert_eq!((used.total_ns, used.precise), (94_999_000, true));
        let used = sample(Some(95_000_000), 9).cpu_since(&sample(None, 1));
        assert_eq!((used.total_ns, used.precise), (80_000_000, false));
    }
}
