"""Chacra: geo-referenced traceability for cacao supply chains."""
