"""`mailbot roster`: the institutions in the database, imported from staff's files and listed."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from mailbot import store
from mailbot.campaigns import roster as roster_file
from mailbot.campaigns.roster_import import import_file, imported
from mailbot.cli.base import State, cli


@cli.group(name="roster")
def roster_group() -> None:
    """The list of institutions that must report."""


@roster_group.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--replace",
    is_flag=True,
    help="Also deactivate the institutions missing from the file (their history is kept; they are no "
    "longer chased nor counted).",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be added, changed, reactivated, deactivated.")
@click.option("--by", "actor", default=None, help="Who imports (default: the login name), for the change log.")
@click.pass_obj
def roster_import(state: State, file: Path, replace: bool, dry_run: bool, actor: str | None) -> None:
    """Import or update institutions (by code) from a .csv or .xlsx file; the database is the roster.

    The header is looked for in the first rows (a title above it, merged or two-row headers are fine); columns:
    name and emails, and if known code, group, contact, phone (or Tên đơn vị, Email, Mã đơn vị, Nhóm, Người liên
    hệ, Điện thoại). Without a code column, an institution already in the roster (same name or address) keeps its
    code and a new one gets a code made from its name. A deactivated institution listed again is reactivated. The service never reverts this import: it imports `[roster] file` only
    when that file is changed afterwards.
    Example: mailbot roster import danh-sach-don-vi.xlsx --replace --dry-run
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    found = import_file(engine, file, actor=actor or getpass.getuser(), replace=replace, dry_run=dry_run)
    from mailbot.console import roster_plan_lines, roster_summary

    for line in roster_plan_lines(found):
        click.echo(line)
    click.echo(roster_summary(found, dry_run))
    if found.problems:
        click.echo(f"{len(found.problems)} row(s) skipped:\n" + roster_file.describe(found.problems), err=True)
        raise SystemExit(1)


@roster_group.command(name="list")
@click.option("--json", "as_json_", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def roster_list(state: State, as_json_: bool) -> None:
    """The institutions in the database: code, name, group, emails, phone, contact, active.

    Addresses taught with `review assign --learn` are listed apart ("learned").
    Example: mailbot roster list --json
    """
    settings = state.settings()
    engine = store.connect(settings.db_url)
    with engine.connect() as conn:
        taught = store.learned_addresses(conn)
        found = [(i, sorted(a for a, code in taught.items() if code == i.code)) for i in imported(conn).values()]
    if as_json_:
        click.echo(
            json.dumps(
                [
                    {
                        "code": i.code,
                        "name": i.name,
                        "group": i.group,
                        "emails": list(i.emails),
                        "learned": learned,
                        "phone": i.phone,
                        "contact": i.contact,
                        "active": i.active,
                    }
                    for i, learned in found
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for i, learned in found:
        emails = "; ".join([*i.emails, *(f"{a} (learned)" for a in learned)])
        click.echo(f"{i.code:12} {'active' if i.active else 'INACTIVE':8} {i.group:18} {i.name}  {emails}")
    active = sum(i.active for i, _ in found)
    click.echo(f"{active} active, {len(found) - active} inactive", err=True)


@roster_group.command(name="export")
@click.argument("file", type=click.Path(path_type=Path))
@click.pass_obj
def roster_export(state: State, file: Path) -> None:
    """Write the roster to an Excel file staff can edit and import again (Vietnamese headers).

    Active institutions are on the first sheet (the one `roster import` reads); deactivated ones on a second.
    Example: mailbot roster export danh-sach-don-vi.xlsx
    """
    from mailbot.campaigns.roster_export import export_file

    settings = state.settings()
    engine = store.connect(settings.db_url)
    with engine.connect() as conn:
        found = list(imported(conn).values())
    if file.suffix.lower() != ".xlsx":
        raise click.UsageError(f"{file}: the export is an Excel workbook; name it FILE.xlsx")
    if not file.parent.is_dir():
        raise click.UsageError(f"{file.parent} is not a folder")
    export_file(found, file)
    active = sum(i.active for i in found)
    click.echo(f"Đã xuất {active} đơn vị đang theo dõi và {len(found) - active} đơn vị ngừng theo dõi ra tệp {file}")
