import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import i18n from '@/i18n';
import { SettingsPage } from '@/features/settings/components/SettingsPage';
import type { Role } from '@/stores/auth';
import { envelope, failure, route, stubFetch } from '@/testing/fetch';
import { renderPage, signInAs } from '@/testing/render';

const OWN = 'a'.repeat(64);
const OFFLINE = 'b'.repeat(64);
const TASK = 'c'.repeat(64);
const settings = {
  package_keys: [
    { fingerprint: OWN, source: 'manager signing key', own: true },
    { fingerprint: OFFLINE, source: '/etc/ops/release.pub', own: false },
  ],
  task_key_fingerprint: TASK,
  retention: { raw_metrics_days: 2, metric_rollups_days: 30 },
  node_defaults: { heartbeat_interval: '30', metric_interval: '60' },
  timing: { heartbeat_timeout_seconds: 90, offline_check_seconds: 30, alert_evaluation_seconds: 30 },
};

function renderSettings(role: Role, answer = () => envelope(settings)) {
  signInAs(role);
  const stub = stubFetch(route('GET', '/api/v1/system/settings', answer));
  renderPage(<SettingsPage />);
  return stub;
}

describe('SettingsPage', () => {
  it('shows the key fingerprints, the retention and the node defaults', async () => {
    renderSettings('admin');
    const keys = await screen.findByTestId('settings-keys');
    expect(within(keys).getByText(OWN)).toBeInTheDocument();
    expect(within(keys).getByText('Manager 安装包密钥')).toBeInTheDocument();
    expect(within(keys).getByText('/etc/ops/release.pub')).toBeInTheDocument();
    expect(screen.getByTestId('task-key')).toHaveTextContent(TASK);
    const retention = screen.getByTestId('settings-retention');
    expect(retention).toHaveTextContent('原始指标上报2 天');
    expect(retention).toHaveTextContent('5 分钟指标汇总30 天');
    expect(screen.getByTestId('settings-defaults')).toHaveTextContent('heartbeat_interval30');
    expect(screen.getByText('90 秒')).toBeInTheDocument();
  });

  it('reads in English', async () => {
    await i18n.changeLanguage('en');
    renderSettings('admin');
    expect(await screen.findByText('Manager package key')).toBeInTheDocument();
    expect(screen.getByTestId('settings-retention')).toHaveTextContent('Raw metric reports2 days');
  });

  it('shows an error the admin can retry', async () => {
    renderSettings('admin', () => failure(503, 5003, 'storage unavailable'));
    expect(await screen.findByText('数据加载失败: storage unavailable (5003)')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: '重试' })).toBeInTheDocument();
  });

  it('is for admins only', async () => {
    const { calls } = renderSettings('operator');
    expect(await screen.findByText('您的角色无权查看此页面')).toBeInTheDocument();
    expect(calls).toHaveLength(0);
  });
});
