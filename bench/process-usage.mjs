// Loaded into the CLI the bench runs (node --import): when the process exits, writes its peak RSS
// (the report included, which the run's own summary, written before it, cannot count) and the
// CPU time of the process and of every child it waited for (git above all), as JSON.
import { readFileSync, writeFileSync } from 'node:fs';

/** Linux's USER_HZ, the unit of the CPU times in /proc/<pid>/stat. */
const TICKS_PER_SECOND = 100;

const file = process.env.PO_BENCH_USAGE_FILE;
if (file)
  process.on('exit', () => {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // utime, stime, cutime and cstime: fields 14-17, counted past the command name (it may hold spaces).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields.slice(11, 15).reduce((sum, field) => sum + Number(field), 0);
    writeFileSync(
      file,
      JSON.stringify({
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
        cpuMs: (ticks * 1000) / TICKS_PER_SECOND,
      }),
    );
  });
