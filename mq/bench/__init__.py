"""`mq bench`: the load-test harness. It drives a broker through the SDK, as a user would.

options.py   every knob, one frozen value          runner.py   one run, start to end
workers.py   a worker's spec, result, process       producer.py / consumer.py  the load loops
pacer.py     open-loop send times                   shared.py   live counters across processes
histogram.py log-linear latency histogram           broker.py   the broker subprocess, CPU, RSS
report.py    figures as JSON and as tables          progress.py the live progress line
floor.py / echo.py  the machine's raw limits        compare.py  two reports side by side
idle.py      idle connections beside a run
cli.py       the `mq bench` flags
"""
