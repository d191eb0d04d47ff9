"""Call (MiiTel) and meeting (Zoom) recordings: read, kept, linked to CRM records, written back.

phones     phone numbers → E.164 (phonenumbers)
config     recordings.yaml: payload paths, user map, matching and write-back settings
capture    the provider-neutral reading of one payload; JSON path helpers
miitel     MiiTel outgoing webhook: challenge, delivery id, call → Capture
zoom       Zoom: signature, url_validation answer, delivery id, meeting → Capture
store      Recording rows: kept and merged per provider id; artifacts for the rules
matching   linking recordings to leads, contacts, deals, accounts
keys       match keys: the values a recording and a CRM record can meet on
index      the match keys of every snapshot and recording, kept in the store
marks      what changed since the last re-match pass (keys, recordings)
rematch    the re-match pass: the recordings a change concerns, or all of them
values     the links each deal should carry (desired values for write-back)
pipeline   what the RQ jobs in worker.py do
packet     a record's handoff packet
cli        ``tasuki artifacts`` and ``tasuki handoff``
"""
