"""Follow-up statistics for the steering group (samordningsförbund), per period and gender.

    followup(session, period_start, period_end, *, actor, at) -> FollowUpReport
    followup_report(hub, period_start, period_end, *, actor, at=None) -> FollowUpReport

Using a person's data for statistics is the purpose ``evaluation``: a record counts only
when the consent gate permits it (origin -> joint team, the record's category,
``evaluation``), and every decision is written to the ledger. Published counts of 1 to 4
are suppressed. See docs/statistics.md.

    period.py       the period as typed (two YYYY-MM-DD dates), for `evi stats` and the web
    records.py      the referrals and closures that can place someone in the period (SQL)
    cases.py        a person's referrals and closures as cases (ärenden): the one
                    definition, the caseworker's summary's too
    counting.py     who counts in which measure; raw figures (never published as they are)
    gating.py       asking the gate, once per (person, origin, category), batched per person
    suppression.py  small-cell and complementary suppression: raw figures -> report
    report.py       the published report (pydantic)
    text.py         the report as text tables (their rows and legend: the web page's too)
    csvfile.py      the report as CSV
    followup.py     the use case: read and decide without the write lock, then log
"""
