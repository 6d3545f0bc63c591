"""The whole study: the resumable chain prepare -> train -> merge -> bench -> compare, its lock and progress,
each tag vs base, the report, the CPU demo, and the Slurm job graph.

May import: every stage below cli."""
