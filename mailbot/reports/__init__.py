"""Reports: where a campaign stands, the Excel tracker and the consolidation (tổng hợp)."""
