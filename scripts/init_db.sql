CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE alert_rules (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    name VARCHAR(128) NOT NULL, 
    metric VARCHAR(64) NOT NULL, 
    operator ENUM('gt','gte','lt','lte','eq','ne') NOT NULL, 
    threshold NUMERIC(10, 2) NOT NULL, 
    duration INTEGER NOT NULL DEFAULT '60', 
    severity ENUM('critical','warning','info') NOT NULL DEFAULT 'warning', 
    target_type ENUM('all','group','node') NOT NULL DEFAULT 'all', 
    target_value JSON, 
    notification JSON, 
    status ENUM('enabled','disabled') NOT NULL DEFAULT 'enabled', 
    created_by BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    CONSTRAINT pk_alert_rules PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='alert rules';

CREATE INDEX idx_metric ON alert_rules (metric);

CREATE INDEX idx_status ON alert_rules (status);

CREATE TABLE alerts (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    rule_id BIGINT UNSIGNED NOT NULL, 
    node_id BIGINT UNSIGNED NOT NULL, 
    metric VARCHAR(64) NOT NULL, 
    current_value NUMERIC(10, 2) NOT NULL, 
    threshold NUMERIC(10, 2) NOT NULL, 
    severity ENUM('critical','warning','info') NOT NULL, 
    status ENUM('firing','resolved') NOT NULL DEFAULT 'firing', 
    fired_at DATETIME NOT NULL, 
    resolved_at DATETIME, 
    acknowledged_by BIGINT UNSIGNED, 
    acknowledged_at DATETIME, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    CONSTRAINT pk_alerts PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='alerts';

CREATE INDEX idx_fired_at ON alerts (fired_at);

CREATE INDEX idx_node_id ON alerts (node_id);

CREATE INDEX idx_rule_id ON alerts (rule_id);

CREATE INDEX idx_status ON alerts (status);

CREATE TABLE audit_logs (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    user_id BIGINT UNSIGNED, 
    username VARCHAR(64), 
    action VARCHAR(64) NOT NULL, 
    resource_type VARCHAR(32) NOT NULL, 
    resource_id VARCHAR(64), 
    detail JSON, 
    ip VARCHAR(45) NOT NULL, 
    user_agent VARCHAR(255), 
    status ENUM('success','failed') NOT NULL DEFAULT 'success', 
    error_message TEXT, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    fold_key VARCHAR(64), 
    occurrences INTEGER NOT NULL DEFAULT '1', 
    CONSTRAINT pk_audit_logs PRIMARY KEY (id), 
    CONSTRAINT uk_fold_key UNIQUE (fold_key)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='audit log';

CREATE INDEX idx_action ON audit_logs (action);

CREATE INDEX idx_created_at ON audit_logs (created_at);

CREATE INDEX idx_resource ON audit_logs (resource_type, resource_id);

CREATE INDEX idx_user_id ON audit_logs (user_id);

CREATE TABLE job_claims (
    job VARCHAR(64) NOT NULL, 
    scheduled_at DATETIME NOT NULL, 
    claimed_by VARCHAR(64) NOT NULL, 
    claimed_at DATETIME NOT NULL, 
    lease_until DATETIME NOT NULL, 
    finished_at DATETIME, 
    error TEXT, 
    CONSTRAINT pk_job_claims PRIMARY KEY (job, scheduled_at)
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE TABLE node_groups (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    name VARCHAR(64) NOT NULL, 
    description VARCHAR(255), 
    parent_id BIGINT UNSIGNED, 
    sort_order INTEGER NOT NULL DEFAULT '0', 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    CONSTRAINT pk_node_groups PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='node groups';

CREATE INDEX idx_parent_id ON node_groups (parent_id);

CREATE TABLE node_metrics (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    node_id BIGINT UNSIGNED NOT NULL, 
    cpu_usage NUMERIC(5, 2), 
    memory_usage NUMERIC(5, 2), 
    memory_used BIGINT, 
    disk_usage NUMERIC(5, 2), 
    disk_used BIGINT, 
    network_rx BIGINT, 
    network_tx BIGINT, 
    load_avg_1 NUMERIC(5, 2), 
    load_avg_5 NUMERIC(5, 2), 
    load_avg_15 NUMERIC(5, 2), 
    process_count INTEGER, 
    tcp_connections INTEGER, 
    timestamp DATETIME NOT NULL, 
    CONSTRAINT pk_node_metrics PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='node metrics';

CREATE INDEX idx_node_timestamp ON node_metrics (node_id, timestamp);

CREATE INDEX idx_timestamp ON node_metrics (timestamp);

CREATE TABLE nodes (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    uuid VARCHAR(36) NOT NULL, 
    hostname VARCHAR(128) NOT NULL, 
    ip VARCHAR(45) NOT NULL, 
    port INTEGER NOT NULL DEFAULT '9100', 
    group_id BIGINT UNSIGNED, 
    os VARCHAR(32), 
    arch VARCHAR(16), 
    kernel_version VARCHAR(64), 
    daemon_version VARCHAR(32), 
    cpu_cores INTEGER, 
    memory_total BIGINT, 
    disk_total BIGINT, 
    status ENUM('online','offline','unknown') NOT NULL DEFAULT 'unknown', 
    last_heartbeat DATETIME, 
    tags JSON, 
    labels JSON, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    CONSTRAINT pk_nodes PRIMARY KEY (id), 
    CONSTRAINT uk_uuid UNIQUE (uuid)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='nodes';

CREATE INDEX idx_group_id ON nodes (group_id);

CREATE INDEX idx_ip ON nodes (ip);

CREATE INDEX idx_status ON nodes (status);

CREATE TABLE task_executions (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    task_id BIGINT UNSIGNED NOT NULL, 
    execution_id VARCHAR(36) NOT NULL, 
    node_id BIGINT UNSIGNED NOT NULL, 
    status ENUM('pending','running','success','failed','timeout','cancelled') NOT NULL DEFAULT 'pending', 
    exit_code INTEGER, 
    output MEDIUMTEXT, 
    error TEXT, 
    started_at DATETIME, 
    finished_at DATETIME, 
    triggered_by ENUM('manual','schedule','api') NOT NULL DEFAULT 'manual', 
    created_by BIGINT UNSIGNED, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    CONSTRAINT pk_task_executions PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='task executions';

CREATE INDEX idx_created_at ON task_executions (created_at);

CREATE INDEX idx_execution_id ON task_executions (execution_id);

CREATE INDEX idx_node_id ON task_executions (node_id);

CREATE INDEX idx_status ON task_executions (status);

CREATE INDEX idx_task_id ON task_executions (task_id);

CREATE TABLE tasks (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    name VARCHAR(128) NOT NULL, 
    type ENUM('script','file','service','custom') NOT NULL, 
    content JSON NOT NULL, 
    cron_expr VARCHAR(64), 
    timeout INTEGER NOT NULL DEFAULT '300', 
    retry_count INTEGER NOT NULL DEFAULT '0', 
    retry_interval INTEGER NOT NULL DEFAULT '60', 
    target_type ENUM('node','group','tag','all') NOT NULL DEFAULT 'node', 
    target_value JSON, 
    status ENUM('enabled','disabled') NOT NULL DEFAULT 'enabled', 
    description VARCHAR(255), 
    created_by BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    CONSTRAINT pk_tasks PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='tasks';

CREATE INDEX idx_status ON tasks (status);

CREATE INDEX idx_type ON tasks (type);

CREATE TABLE update_records (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    batch_id VARCHAR(36) NOT NULL, 
    node_id BIGINT UNSIGNED NOT NULL, 
    component ENUM('daemon','agent') NOT NULL, 
    from_version VARCHAR(32), 
    to_version VARCHAR(32) NOT NULL, 
    status ENUM('pending','downloading','installing','verifying','success','failed','rollback') NOT NULL DEFAULT 'pending', 
    progress INTEGER NOT NULL DEFAULT '0', 
    error_message TEXT, 
    started_at DATETIME, 
    finished_at DATETIME, 
    created_by BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    CONSTRAINT pk_update_records PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='update records';

CREATE INDEX idx_batch_id ON update_records (batch_id);

CREATE INDEX idx_node_id ON update_records (node_id);

CREATE INDEX idx_status ON update_records (status);

CREATE TABLE users (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    username VARCHAR(64) NOT NULL, 
    password_hash VARCHAR(255) NOT NULL, 
    email VARCHAR(128), 
    phone VARCHAR(20), 
    `role` ENUM('admin','operator','viewer') NOT NULL DEFAULT 'viewer', 
    status TINYINT NOT NULL DEFAULT '1', 
    last_login_at DATETIME, 
    last_login_ip VARCHAR(45), 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    CONSTRAINT pk_users PRIMARY KEY (id), 
    CONSTRAINT uk_email UNIQUE (email), 
    CONSTRAINT uk_username UNIQUE (username)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='users';

CREATE TABLE versions (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    component ENUM('daemon','agent') NOT NULL, 
    version VARCHAR(32) NOT NULL, 
    file_path VARCHAR(255) NOT NULL, 
    file_name VARCHAR(128) NOT NULL, 
    file_size BIGINT NOT NULL, 
    hash_sha256 VARCHAR(64) NOT NULL, 
    signature TEXT NOT NULL, 
    os VARCHAR(32) NOT NULL DEFAULT 'linux', 
    arch VARCHAR(16) NOT NULL DEFAULT 'amd64', 
    release_notes TEXT, 
    is_latest TINYINT NOT NULL DEFAULT '0', 
    created_by BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    CONSTRAINT pk_versions PRIMARY KEY (id), 
    CONSTRAINT uk_component_version_os_arch UNIQUE (component, version, os, arch)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='release packages';

CREATE INDEX idx_component_latest ON versions (component, is_latest);

CREATE TABLE agents (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    node_id BIGINT UNSIGNED NOT NULL, 
    version VARCHAR(32), 
    status ENUM('running','stopped','error','unknown') NOT NULL DEFAULT 'unknown', 
    pid INTEGER, 
    cpu_usage NUMERIC(5, 2), 
    memory_usage BIGINT, 
    start_time DATETIME, 
    restart_count INTEGER NOT NULL DEFAULT '0', 
    last_error TEXT, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    CONSTRAINT pk_agents PRIMARY KEY (id), 
    CONSTRAINT fk_agents_node FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE, 
    CONSTRAINT uk_node_id UNIQUE (node_id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='agents';

CREATE TABLE token_families (
    id VARCHAR(36) NOT NULL, 
    user_id BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL, 
    expires_at DATETIME NOT NULL, 
    revoked_at DATETIME, 
    revoked_reason VARCHAR(32), 
    CONSTRAINT pk_token_families PRIMARY KEY (id), 
    CONSTRAINT fk_token_families_user_id FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE INDEX idx_token_families_expires_at ON token_families (expires_at);

CREATE INDEX idx_token_families_user_id ON token_families (user_id);

CREATE TABLE refresh_tokens (
    jti VARCHAR(36) NOT NULL, 
    family_id VARCHAR(36) NOT NULL, 
    issued_at DATETIME NOT NULL, 
    expires_at DATETIME NOT NULL, 
    used_at DATETIME, 
    CONSTRAINT pk_refresh_tokens PRIMARY KEY (jti), 
    CONSTRAINT fk_refresh_tokens_family_id FOREIGN KEY(family_id) REFERENCES token_families (id) ON DELETE CASCADE
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE INDEX idx_refresh_tokens_family_id ON refresh_tokens (family_id);

INSERT INTO alembic_version (version_num) VALUES ('0001');

-- Running upgrade 0001 -> 0002

CREATE TABLE enrollment_tokens (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    name VARCHAR(64) NOT NULL, 
    token_hash VARCHAR(64) NOT NULL, 
    token_prefix VARCHAR(12) NOT NULL, 
    expires_at DATETIME, 
    max_uses INTEGER, 
    uses INTEGER NOT NULL DEFAULT '0', 
    revoked_at DATETIME, 
    last_used_at DATETIME, 
    created_by BIGINT UNSIGNED, 
    created_at DATETIME NOT NULL, 
    CONSTRAINT pk_enrollment_tokens PRIMARY KEY (id), 
    CONSTRAINT uk_enrollment_token_hash UNIQUE (token_hash)
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE TABLE node_configs (
    scope ENUM('group','node') NOT NULL, 
    scope_id BIGINT UNSIGNED NOT NULL, 
    config JSON NOT NULL, 
    updated_by BIGINT UNSIGNED, 
    updated_at DATETIME NOT NULL, 
    CONSTRAINT pk_node_configs PRIMARY KEY (scope, scope_id)
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE TABLE node_commands (
    id VARCHAR(36) NOT NULL, 
    node_id BIGINT UNSIGNED NOT NULL, 
    type VARCHAR(32) NOT NULL, 
    payload JSON NOT NULL, 
    state ENUM('pending','sent','done','expired') NOT NULL DEFAULT 'pending', 
    created_at DATETIME NOT NULL, 
    expires_at DATETIME NOT NULL, 
    sent_at DATETIME, 
    attempts INTEGER NOT NULL DEFAULT '0', 
    done_at DATETIME, 
    delivered_via VARCHAR(16), 
    created_by BIGINT UNSIGNED, 
    CONSTRAINT pk_node_commands PRIMARY KEY (id), 
    CONSTRAINT fk_node_commands_node_id FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE INDEX idx_node_commands_node_id_state ON node_commands (node_id, state);

CREATE INDEX idx_node_commands_state_expires_at ON node_commands (state, expires_at);

CREATE TABLE node_credentials (
    node_id BIGINT UNSIGNED NOT NULL, 
    token_hash VARCHAR(64) NOT NULL, 
    created_at DATETIME NOT NULL, 
    CONSTRAINT pk_node_credentials PRIMARY KEY (node_id), 
    CONSTRAINT fk_node_credentials_node_id FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE, 
    CONSTRAINT uk_node_token_hash UNIQUE (token_hash)
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE TABLE node_events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    node_id BIGINT UNSIGNED NOT NULL, 
    event VARCHAR(32) NOT NULL, 
    from_status VARCHAR(16), 
    to_status VARCHAR(16), 
    at DATETIME NOT NULL, 
    detail JSON, 
    CONSTRAINT pk_node_events PRIMARY KEY (id), 
    CONSTRAINT fk_node_events_node_id FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE INDEX idx_node_events_node_id_at ON node_events (node_id, at);

CREATE TABLE node_labels (
    node_id BIGINT UNSIGNED NOT NULL, 
    `key` VARCHAR(63) NOT NULL, 
    value VARCHAR(191) NOT NULL, 
    CONSTRAINT pk_node_labels PRIMARY KEY (node_id, `key`), 
    CONSTRAINT fk_node_labels_node_id FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE INDEX idx_node_labels_key_value ON node_labels (`key`, value, node_id);

CREATE TABLE node_metrics_latest (
    node_id BIGINT UNSIGNED NOT NULL, 
    cpu_usage NUMERIC(5, 2), 
    memory_usage NUMERIC(5, 2), 
    memory_used BIGINT, 
    disk_usage NUMERIC(5, 2), 
    disk_used BIGINT, 
    network_rx BIGINT, 
    network_tx BIGINT, 
    load_avg_1 NUMERIC(5, 2), 
    load_avg_5 NUMERIC(5, 2), 
    load_avg_15 NUMERIC(5, 2), 
    process_count INTEGER, 
    tcp_connections INTEGER, 
    timestamp DATETIME NOT NULL, 
    CONSTRAINT pk_node_metrics_latest PRIMARY KEY (node_id), 
    CONSTRAINT fk_node_metrics_latest_node_id FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='latest metrics per node';

CREATE TABLE node_tags (
    node_id BIGINT UNSIGNED NOT NULL, 
    tag VARCHAR(64) NOT NULL, 
    CONSTRAINT pk_node_tags PRIMARY KEY (node_id, tag), 
    CONSTRAINT fk_node_tags_node_id FOREIGN KEY(node_id) REFERENCES nodes (id) ON DELETE CASCADE
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE INDEX idx_node_tags_tag ON node_tags (tag, node_id);

ALTER TABLE nodes ADD COLUMN peer_ip VARCHAR(45);

DROP INDEX idx_node_timestamp ON node_metrics;

CREATE UNIQUE INDEX idx_node_timestamp ON node_metrics (node_id, timestamp);

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

-- Running upgrade 0002 -> 0003

CREATE INDEX idx_status_heartbeat ON nodes (status, last_heartbeat);

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002';

-- Running upgrade 0003 -> 0004

DROP INDEX idx_node_timestamp ON node_metrics;

DROP INDEX idx_timestamp ON node_metrics;

ALTER TABLE node_metrics RENAME TO node_metrics_legacy;

CREATE TABLE node_metrics (
    node_id BIGINT UNSIGNED NOT NULL, 
    cpu_usage NUMERIC(5, 2), 
    memory_usage NUMERIC(5, 2), 
    memory_used BIGINT, 
    disk_usage NUMERIC(5, 2), 
    disk_used BIGINT, 
    network_rx BIGINT, 
    network_tx BIGINT, 
    load_avg_1 NUMERIC(5, 2), 
    load_avg_5 NUMERIC(5, 2), 
    load_avg_15 NUMERIC(5, 2), 
    process_count INTEGER, 
    tcp_connections INTEGER, 
    timestamp DATETIME NOT NULL, 
    CONSTRAINT pk_node_metrics PRIMARY KEY (timestamp, node_id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='node metrics' PARTITION BY RANGE COLUMNS(`timestamp`) (PARTITION pmax VALUES LESS THAN (MAXVALUE));

CREATE INDEX idx_node_timestamp ON node_metrics (node_id, timestamp);

CREATE TABLE node_metrics_5m (
    node_id BIGINT UNSIGNED NOT NULL, 
    bucket DATETIME NOT NULL COMMENT 'bucket start (UTC)', 
    samples INTEGER NOT NULL COMMENT 'raw reports in the bucket', 
    cpu_usage_avg NUMERIC(5, 2), 
    cpu_usage_max NUMERIC(5, 2), 
    memory_usage_avg NUMERIC(5, 2), 
    memory_usage_max NUMERIC(5, 2), 
    memory_used_avg BIGINT, 
    memory_used_max BIGINT, 
    disk_usage_avg NUMERIC(5, 2), 
    disk_usage_max NUMERIC(5, 2), 
    disk_used_avg BIGINT, 
    disk_used_max BIGINT, 
    network_rx_avg BIGINT, 
    network_rx_max BIGINT, 
    network_tx_avg BIGINT, 
    network_tx_max BIGINT, 
    load_avg_1_avg NUMERIC(5, 2), 
    load_avg_1_max NUMERIC(5, 2), 
    load_avg_5_avg NUMERIC(5, 2), 
    load_avg_5_max NUMERIC(5, 2), 
    load_avg_15_avg NUMERIC(5, 2), 
    load_avg_15_max NUMERIC(5, 2), 
    process_count_avg INTEGER, 
    process_count_max INTEGER, 
    tcp_connections_avg INTEGER, 
    tcp_connections_max INTEGER, 
    CONSTRAINT pk_node_metrics_5m PRIMARY KEY (node_id, bucket)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='5-minute metric rollups per node' PARTITION BY RANGE COLUMNS(`bucket`) (PARTITION pmax VALUES LESS THAN (MAXVALUE));

CREATE INDEX idx_bucket ON node_metrics_5m (bucket);

CREATE TABLE fleet_metrics_5m (
    group_id BIGINT UNSIGNED NOT NULL COMMENT '0: the whole fleet; else a group subtree', 
    bucket DATETIME NOT NULL COMMENT 'bucket start (UTC)', 
    nodes INTEGER NOT NULL COMMENT 'nodes that reported', 
    samples INTEGER NOT NULL COMMENT 'raw reports in the bucket', 
    cpu_usage_avg NUMERIC(5, 2), 
    cpu_usage_max NUMERIC(5, 2), 
    memory_usage_avg NUMERIC(5, 2), 
    memory_usage_max NUMERIC(5, 2), 
    memory_used_avg BIGINT, 
    memory_used_max BIGINT, 
    disk_usage_avg NUMERIC(5, 2), 
    disk_usage_max NUMERIC(5, 2), 
    disk_used_avg BIGINT, 
    disk_used_max BIGINT, 
    network_rx_avg BIGINT, 
    network_rx_max BIGINT, 
    network_tx_avg BIGINT, 
    network_tx_max BIGINT, 
    load_avg_1_avg NUMERIC(5, 2), 
    load_avg_1_max NUMERIC(5, 2), 
    load_avg_5_avg NUMERIC(5, 2), 
    load_avg_5_max NUMERIC(5, 2), 
    load_avg_15_avg NUMERIC(5, 2), 
    load_avg_15_max NUMERIC(5, 2), 
    process_count_avg INTEGER, 
    process_count_max INTEGER, 
    tcp_connections_avg INTEGER, 
    tcp_connections_max INTEGER, 
    CONSTRAINT pk_fleet_metrics_5m PRIMARY KEY (group_id, bucket)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='5-minute metric rollups of the fleet and of each group';

CREATE INDEX idx_bucket ON fleet_metrics_5m (bucket);

CREATE TABLE metric_rollup_pending (
    bucket DATETIME NOT NULL COMMENT 'bucket start (UTC)', 
    version BIGINT NOT NULL COMMENT 'bumped by every ingest batch with rows in the bucket', 
    CONSTRAINT pk_metric_rollup_pending PRIMARY KEY (bucket)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='buckets with raw rows not yet rolled up';

INSERT INTO node_metrics (node_id, cpu_usage, memory_usage, memory_used, disk_usage, disk_used, network_rx, network_tx, load_avg_1, load_avg_5, load_avg_15, process_count, tcp_connections, timestamp) SELECT node_id, cpu_usage, memory_usage, memory_used, disk_usage, disk_used, network_rx, network_tx, load_avg_1, load_avg_5, load_avg_15, process_count, tcp_connections, timestamp FROM node_metrics_legacy;

DROP TABLE node_metrics_legacy;

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0003';

-- Running upgrade 0004 -> 0005

ALTER TABLE node_commands MODIFY state ENUM('pending','sent','done','expired','failed') NOT NULL DEFAULT 'pending';

ALTER TABLE node_commands ADD COLUMN error TEXT;

UPDATE alembic_version SET version_num='0005' WHERE alembic_version.version_num = '0004';

-- Running upgrade 0005 -> 0006

ALTER TABLE users ADD COLUMN username_key VARCHAR(64) COLLATE utf8mb4_bin;

ALTER TABLE node_tags MODIFY tag VARCHAR(64) COLLATE utf8mb4_bin NOT NULL;

ALTER TABLE users MODIFY username_key VARCHAR(64) COLLATE utf8mb4_bin NOT NULL;

ALTER TABLE users ADD CONSTRAINT uk_username_key UNIQUE (username_key);

UPDATE alembic_version SET version_num='0006' WHERE alembic_version.version_num = '0005';

-- Running upgrade 0006 -> 0007

ALTER TABLE node_labels MODIFY `key` VARCHAR(63) COLLATE utf8mb4_bin NOT NULL;

ALTER TABLE node_labels MODIFY value VARCHAR(191) COLLATE utf8mb4_bin NOT NULL;

UPDATE alembic_version SET version_num='0007' WHERE alembic_version.version_num = '0006';

-- Running upgrade 0007 -> 0008

ALTER TABLE nodes ADD COLUMN enrollment_key_hash VARCHAR(64);

UPDATE alembic_version SET version_num='0008' WHERE alembic_version.version_num = '0007';

-- Running upgrade 0008 -> 0009

ALTER TABLE versions ADD COLUMN manifest TEXT;

ALTER TABLE versions ADD COLUMN key_fingerprint VARCHAR(64);

CREATE TABLE version_locks (
    component VARCHAR(16) NOT NULL, 
    CONSTRAINT pk_version_locks PRIMARY KEY (component)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='serialises changes to the versions of a component';

INSERT INTO version_locks (component) VALUES ('daemon');

INSERT INTO version_locks (component) VALUES ('agent');

UPDATE alembic_version SET version_num='0009' WHERE alembic_version.version_num = '0008';

-- Running upgrade 0009 -> 0010

ALTER TABLE versions MODIFY version VARCHAR(32) COLLATE utf8mb4_bin NOT NULL;

ALTER TABLE update_records MODIFY from_version VARCHAR(32) COLLATE utf8mb4_bin NULL;

ALTER TABLE update_records MODIFY to_version VARCHAR(32) COLLATE utf8mb4_bin NOT NULL;

UPDATE alembic_version SET version_num='0010' WHERE alembic_version.version_num = '0009';

-- Running upgrade 0010 -> 0011

CREATE TABLE rollouts (
    batch_id VARCHAR(36) NOT NULL, 
    component ENUM('daemon','agent') NOT NULL, 
    version_id BIGINT UNSIGNED NOT NULL, 
    version VARCHAR(32) NOT NULL, 
    strategy ENUM('all','rolling','canary') NOT NULL, 
    batch_size INTEGER NOT NULL, 
    max_failures INTEGER NOT NULL, 
    canary_size INTEGER NOT NULL, 
    bake_seconds INTEGER NOT NULL, 
    total_waves INTEGER NOT NULL, 
    current_wave INTEGER NOT NULL, 
    wave_done_at DATETIME, 
    accepted_failures INTEGER NOT NULL DEFAULT '0', 
    resumed_wave INTEGER NOT NULL DEFAULT '0', 
    status ENUM('running','paused','cancelled','completed','failed') NOT NULL DEFAULT 'running', 
    reason VARCHAR(512), 
    wait_seconds INTEGER NOT NULL DEFAULT '3600', 
    expires_at DATETIME NOT NULL, 
    created_by BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    finished_at DATETIME, 
    rollback_of VARCHAR(36), 
    CONSTRAINT pk_rollouts PRIMARY KEY (batch_id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='rollouts of a version to nodes, wave by wave';

CREATE INDEX idx_rollouts_status ON rollouts (status);

CREATE INDEX idx_rollouts_created_at ON rollouts (created_at);

ALTER TABLE update_records ADD COLUMN wave INTEGER NOT NULL DEFAULT '1';

ALTER TABLE update_records ADD COLUMN command_id VARCHAR(36);

ALTER TABLE update_records ADD COLUMN reported_at DATETIME;

CREATE INDEX idx_update_records_batch_wave ON update_records (batch_id, wave);

UPDATE alembic_version SET version_num='0011' WHERE alembic_version.version_num = '0010';

-- Running upgrade 0011 -> 0012

ALTER TABLE alert_rules MODIFY target_type ENUM('all','group','tag','node') NOT NULL DEFAULT 'all';

ALTER TABLE alert_rules MODIFY threshold NUMERIC(20, 2) NOT NULL;

ALTER TABLE alert_rules ADD COLUMN keep_firing_for INTEGER NOT NULL DEFAULT '0';

ALTER TABLE alerts MODIFY current_value NUMERIC(20, 2) NOT NULL;

ALTER TABLE alerts MODIFY threshold NUMERIC(20, 2) NOT NULL;

ALTER TABLE alerts ADD COLUMN open_key VARCHAR(48);

ALTER TABLE alerts ADD CONSTRAINT uk_open_key UNIQUE (open_key);

CREATE TABLE alert_conditions (
    `key` VARCHAR(48) NOT NULL, 
    rule_id BIGINT UNSIGNED NOT NULL, 
    node_id BIGINT UNSIGNED NOT NULL, 
    since DATETIME NOT NULL, 
    fired_at DATETIME, 
    cleared_at DATETIME, 
    CONSTRAINT pk_alert_conditions PRIMARY KEY (`key`)
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE TABLE alert_silences (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    target_type ENUM('rule','node','group','tag') NOT NULL, 
    target_value VARCHAR(64) NOT NULL, 
    reason VARCHAR(255) NOT NULL, 
    starts_at DATETIME NOT NULL, 
    ends_at DATETIME NOT NULL, 
    created_by BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL, 
    updated_at DATETIME NOT NULL, 
    CONSTRAINT pk_alert_silences PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB;

CREATE INDEX idx_alert_silences_ends_at ON alert_silences (ends_at);

CREATE TABLE alert_evaluator (
    id SMALLINT NOT NULL, 
    evaluated_at DATETIME, 
    CONSTRAINT pk_alert_evaluator PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB;

INSERT INTO alert_evaluator (id, evaluated_at) VALUES (1, NULL);

UPDATE alembic_version SET version_num='0012' WHERE alembic_version.version_num = '0011';

-- Running upgrade 0012 -> 0013

CREATE TABLE notification_channels (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    name VARCHAR(64) NOT NULL, 
    type ENUM('webhook','email','dingtalk','wecom','feishu') NOT NULL, 
    config JSON NOT NULL, 
    enabled TINYINT NOT NULL DEFAULT '1', 
    created_by BIGINT UNSIGNED NOT NULL, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, 
    CONSTRAINT pk_notification_channels PRIMARY KEY (id), 
    CONSTRAINT uk_notification_channels_name UNIQUE (name)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='where alert notifications are sent';

CREATE TABLE notification_deliveries (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    channel_id BIGINT UNSIGNED NOT NULL, 
    alert_id BIGINT UNSIGNED, 
    event ENUM('firing','resolved','test') NOT NULL, 
    payload JSON NOT NULL, 
    status ENUM('pending','sending','sent','failed') NOT NULL DEFAULT 'pending', 
    attempts INTEGER NOT NULL DEFAULT '0', 
    next_attempt_at DATETIME NOT NULL, 
    lease_until DATETIME, 
    claimed_by VARCHAR(36), 
    last_error VARCHAR(512), 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    sent_at DATETIME, 
    CONSTRAINT pk_notification_deliveries PRIMARY KEY (id)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='alert notifications to send, sent or given up';

CREATE INDEX idx_notification_deliveries_due ON notification_deliveries (status, next_attempt_at);

CREATE INDEX idx_notification_deliveries_lease ON notification_deliveries (status, lease_until);

CREATE INDEX idx_notification_deliveries_alert ON notification_deliveries (alert_id);

UPDATE alembic_version SET version_num='0013' WHERE alembic_version.version_num = '0012';

-- Running upgrade 0013 -> 0014

ALTER TABLE task_executions ADD COLUMN command_id VARCHAR(36);

ALTER TABLE task_executions ADD COLUMN deadline_at DATETIME;

ALTER TABLE task_executions ADD COLUMN reported_at DATETIME;

ALTER TABLE task_executions ADD COLUMN output_truncated TINYINT NOT NULL DEFAULT '0';

CREATE UNIQUE INDEX uk_task_executions_execution_node ON task_executions (execution_id, node_id);

CREATE INDEX idx_task_executions_status_deadline ON task_executions (status, deadline_at);

UPDATE alembic_version SET version_num='0014' WHERE alembic_version.version_num = '0013';

-- Running upgrade 0014 -> 0015

ALTER TABLE tasks ADD COLUMN next_run_at DATETIME;

ALTER TABLE tasks ADD COLUMN misfire ENUM('skip','run_once') NOT NULL DEFAULT 'skip';

CREATE INDEX idx_tasks_status_next_run_at ON tasks (status, next_run_at);

UPDATE alembic_version SET version_num='0015' WHERE alembic_version.version_num = '0014';

-- Running upgrade 0015 -> 0016

CREATE TABLE task_output_chunks (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, 
    execution_id VARCHAR(36) NOT NULL, 
    node_id BIGINT UNSIGNED NOT NULL, 
    start_offset BIGINT NOT NULL, 
    end_offset BIGINT NOT NULL, 
    data MEDIUMTEXT NOT NULL, 
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, 
    CONSTRAINT pk_task_output_chunks PRIMARY KEY (id), 
    CONSTRAINT uk_task_output_chunks_part UNIQUE (execution_id, node_id, start_offset)
)CHARSET=utf8mb4 ENGINE=InnoDB COMMENT='task output while the execution runs';

UPDATE alembic_version SET version_num='0016' WHERE alembic_version.version_num = '0015';

-- Running upgrade 0016 -> 0017

ALTER TABLE alert_conditions DROP PRIMARY KEY;

ALTER TABLE alert_conditions ADD CONSTRAINT pk_alert_conditions PRIMARY KEY (rule_id, node_id);

ALTER TABLE alert_conditions ADD CONSTRAINT uk_alert_conditions_key UNIQUE (`key`);

UPDATE alembic_version SET version_num='0017' WHERE alembic_version.version_num = '0016';

