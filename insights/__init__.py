"""Investor aggregates: the concentration grid with its disclosure control (privacy,
concentration), site suggestions (sites), PNG maps (maps), the protected grafting
table (grafting) and the cache the served grid is kept in (cache).

Reads only: every figure comes from what the write paths stored (plots' H3 cells
included), so an investor's request never writes.
"""
