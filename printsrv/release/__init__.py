"""Release at the printer: stations and terminals where a person identifies by card or PIN
and releases their held documents, the guessing throttle, and the expiry of held documents.

models.py    station sessions and guessing counters (migration 0014, branch "release")
guessing.py  failed card and PIN attempts, per station address and per user, in the database
identify.py  who stands at the station: a card number, or a user name and PIN
held.py      a person's held documents with pages and price on one printer, and releasing them
             through printing.intake.release (the one print path)
stations.py  the station page's server-side session and the terminal API's unit of work
expiry.py    held documents nobody released within release.hold-hours are removed
"""
