"""Harvest lots traced to their plots: facilities, product lots as a merge/split
graph, deliveries, processing, shipments, origin, mass balance and the EUDR file."""
