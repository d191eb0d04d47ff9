"""``tasuki notify``: send what is due now; ``--dry-run`` lists it; ``check`` tests the setup."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from tasuki import startup
from tasuki.notify import agenda, sweep
from tasuki.notify.ledger import Status
from tasuki.notify.outcome import Outcome
from tasuki.notify.sweep import route
from tasuki.store.models import utcnow

if TYPE_CHECKING:  # imported when a command runs: `tasuki --help` stays quick
    from tasuki.notify.sweep import Media, Planned


def _when(at: str | None) -> datetime:
    if at is None:
        return utcnow()
    parsed = datetime.fromisoformat(at)
    if parsed.tzinfo is None:
        raise click.BadParameter("give the offset, e.g. 2026-11-02T10:00+09:00", param_hint="--at")
    return parsed


def _route_text(planned: Planned, media: Media) -> str:
    routed = route(planned, media, look_up=False)
    if isinstance(routed, Outcome):
        return f"not sent ({routed.status.value}): {routed.error}"
    medium, address = routed
    if medium == "slack?":
        email = " or e-mail" if "email" in planned.rule.via and media.mailer else ""
        return f"Slack (the member with {address}){email}"
    return f"{'Slack' if medium == 'slack' else 'e-mail'} {address}"


@click.group("notify", invoke_without_command=True)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would be sent now and to whom; send nothing, write nothing, call nobody.",
)
@click.option("--at", default=None, help="As if it were this time (ISO 8601 with its offset).")
@click.pass_context
def notify_group(ctx: click.Context, dry_run: bool, at: str | None) -> None:
    """Send the notifications due now (Slack, e-mail), each once; and the handoff meeting's
    agenda when it is due. Rules: the notifications files tasuki.yaml names."""
    if ctx.invoked_subcommand is not None:
        return

    rt = startup.current()
    now = _when(at)
    report = sweep.run(rt, now, dry_run=dry_run)
    delivered = agenda.deliver(rt, now, dry_run=dry_run)
    local = now.astimezone(rt.calendar.tz).strftime("%Y-%m-%d %H:%M %Z")
    if report.unconfigured:
        click.echo(
            "Neither Slack (TASUKI_SLACK_BOT_TOKEN) nor e-mail (TASUKI_SMTP_URL) is set up: "
            "nothing can be sent. `tasuki notify --dry-run` shows what would be."
        )
        return
    media = sweep.Media(rt, sweep.book_of(rt))
    verb = "would be sent" if dry_run else "due"
    click.echo(f"Notifications {verb} at {local}: {len(report.due)}")
    for p in report.due:
        click.echo(f"  {p.rule.id}: {p.occurrence.message.title}")
        click.echo(f"      → {p.recipient.label}: {_route_text(p, media)}")
    if report.deferred:
        click.echo(
            f"Waiting for their time (quiet hours, days off, a schedule): {len(report.deferred)}"
        )
        for p in report.deferred:
            due = p.due.astimezone(rt.calendar.tz).strftime("%Y-%m-%d %H:%M")
            click.echo(
                f"  {p.rule.id}: {p.occurrence.message.title} → {p.recipient.label}, at {due}"
            )
    if report.already:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(report.already.items()))
        click.echo(f"Already in the ledger: {sum(report.already.values())} ({shown})")
    if delivered.day is not None:
        click.echo(f"Agenda of {delivered.day}: {delivered.slack_messages} Slack message(s)")
        for line in delivered.planned:
            click.echo(f"  {line}")
    if dry_run:
        click.echo("Dry run: nothing sent, nothing written.")
        return
    figures = report.figures()
    done = ", ".join(f"{k} {v}" for k, v in figures.items() if v)
    click.echo(f"Done: {done or 'nothing to send'}")
    if figures["retry"] or delivered.outcomes.get(Status.PENDING.value):
        raise click.ClickException("some messages could not go now; run again later")


@notify_group.command("check")
def check_command() -> None:
    """Check the Slack token (auth.test), the channels of the destinations and the meeting
    (conversations.info, for channel ids), and that the SMTP server answers."""
    rt = startup.current()
    book = sweep.book_of(rt)
    media = sweep.Media(rt, book)
    problems = 0
    if media.slack is None:
        click.echo("Slack: TASUKI_SLACK_BOT_TOKEN is not set")
    else:
        who = media.slack.whoami()
        if isinstance(who, str):
            problems += 1
            click.echo(f"Slack: the token does not work: {who}")
        else:
            click.echo(f"Slack: {who.get('user')} in {who.get('team')} ({who.get('url')})")
            channels = {d.slack for d in book.destinations.values() if d.slack}
            if rt.settings.config.meeting.slack_channel:
                channels.add(rt.settings.config.meeting.slack_channel)
            for channel in sorted(c for c in channels if c):
                if channel.startswith("#"):
                    click.echo(f"  {channel}: a name (give its id, C…, to check it)")
                    continue
                info = media.slack.channel_info(channel)
                if isinstance(info, str):
                    problems += 1
                    click.echo(f"  {channel}: {info}")
                elif not info.get("is_member") and not info.get("is_im"):
                    problems += 1
                    click.echo(f"  {channel} (#{info.get('name')}): invite the app to the channel")
                else:
                    click.echo(f"  {channel} (#{info.get('name')}): ok")
    if media.mailer is None:
        click.echo("E-mail: TASUKI_SMTP_URL is not set")
    else:
        error = media.mailer.check()
        click.echo(f"E-mail: {media.mailer.settings.url}: {error or 'ok'}")
        problems += bool(error)
    if problems:
        raise click.ClickException(f"{problems} problem(s)")
