"""Mock recording sessions of human single-unit studies (a movie watched while microwires in
the medial temporal lobe record), written in the on-disk layout such pipelines read
(patient_data/<patient>/session_<n>/), and a reader for that layout.

- spec: what a session is made of (the `sessions` config block as a dataclass)
- draws: the random processes (dead-time Poisson trains, waveforms, 1/f LFP)
- stimulus: the movie's playback, the two clocks, TTL pings, DAQ log, watchlog, labels
- write: one session on disk, byte-identical for the same seed
- read: any session in the layout (spikeforge's or one epiphyte wrote) as arrays
"""
