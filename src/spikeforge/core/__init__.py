"""What every chain shares: the bad-input error, the seeding scheme, atomic files, provenance."""
