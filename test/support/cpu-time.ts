// CPU time, which another busy process on the machine does not inflate (unlike wall-clock time, timer lateness or
// event-loop utilisation, which all count the time the OS gave the core to someone else). Linux: from /proc.
import * as fs from 'fs';

/**
 * CPU time the calling thread (the main thread, for the main thread) has run, in ms: /proc schedstat's on-CPU
 * nanoseconds. Null where /proc has no schedstat (not Linux).
 */
export function mainThreadCpuMs(): number | null {
  try {
    const [onCpuNs] = fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
    return Number(onCpuNs) / 1e6;
  } catch {
    return null;
  }
}

/** User + system CPU time of process `pid` so far (all its threads), in ms; null where /proc cannot tell. */
export function processCpuMs(pid: number): number | null {
  try {
    // Fields after the "(comm)": state is field 3, utime 14, stime 15 (clock ticks, 100 per second on Linux).
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

/** Every thread of this process: its CPU time so far (ms, /proc schedstat) and its nice value. Empty off Linux. */
export function threadsCpu(): Map<string, { cpuMs: number; nice: number }> {
  const threads = new Map<string, { cpuMs: number; nice: number }>();
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return threads;
  }
  for (const tid of tids) {
    try {
      const [onCpuNs] = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ');
      // Fields after the "(comm)": state is field 3, nice field 19.
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      threads.set(tid, { cpuMs: Number(onCpuNs) / 1e6, nice });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads;
}
