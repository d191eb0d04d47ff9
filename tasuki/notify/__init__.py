"""Notifications: tasuki telling people, through Slack and e-mail, what needs them.

    schema       the notifications files (YAML → NotificationBook), every problem placed
    event_types  every event a rule can name: its roles, options, defaults
    scene        what event finders look at; Occurrence
    events       handoff_failed, sla_warning, sla_breach, meeting_recording
    ops_events   partial_optimisation, writeback_rejected, sync_stale, failed_jobs,
                 delivery_failed
    message      a notification's content and its Slack and e-mail renderings (escaped)
    ledger       the notification ledger: claim before sending, the outcome after
    slack        slack_sdk's WebClient: posting, finding people by e-mail (cached)
    mail         SMTP (plain, STARTTLS, TLS), the server's reply kept
    sweep        one pass: find, claim, route, send, record (the ``notify`` job)
    agenda       the handoff meeting's agenda to its channel and mailing list
    cli          ``tasuki notify [--dry-run]``, ``tasuki notify check``

Nothing is imported here. The Slack and SMTP settings (``TASUKI_SLACK_*``, ``TASUKI_SMTP_*``)
live in the core, :mod:`tasuki.messaging`, because :mod:`tasuki.settings` reads them.
"""
