"""Remote print agents: sites whose printers the central server cannot reach print through a
small agent (`printsrv agent run`) that long-polls the central server for their jobs.

registry.py   the agents themselves: add (a token printed once), list, remove, authenticate
printers.py   the printers an agent registers, named AGENT/PRINTER on the central server
dispatch.py   remote jobs: claim with a lease, renew, report, expire, refund
wakeups.py    waking a waiting long-poll when a job for its agent is committed
sweeper.py    the background loop that ends jobs whose attempts ran out
actions.py    what the REST adapter awaits (one unit of work each)
client.py     the agent's side of the HTTP protocol (httpx)
journal.py    the agent's journal of jobs handed to its CUPS
runner.py     `printsrv agent run`
"""
