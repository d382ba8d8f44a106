rule mock_session:
    output:
        directory(SESSIONS.session),
    log:
        SESSIONS.logs["mock_session"],
    conda:
        "../../envs/spikeforge.yaml"
    threads: 2
    resources:
        **resources.per_attempt(
            lambda wildcards, threads: resources.session_mem_mb(SESSIONS.cfg, threads),
            resources.session_runtime(SESSIONS.cfg),
        ),
    params:
        spec=lambda wildcards: SESSIONS.spec(wildcards.patient, wildcards.session),
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/mock_session.py"


rule movie_annotation:
    output:
        directory(SESSIONS.annotation),
    log:
        SESSIONS.logs["movie_annotation"],
    conda:
        "../../envs/spikeforge.yaml"
    resources:
        **resources.per_attempt(resources.DEFAULT_MB),
    params:
        spec=SESSIONS.spec(*SESSIONS.sessions()[0]),
        version=SPIKEFORGE_VERSION,
    script:
        "../scripts/movie_annotation.py"
