import { Tab, Tabs } from '@mui/material';
import { useTranslation } from 'react-i18next';
import { Link as RouterLink, useLocation } from 'react-router';

import { useCan } from '@/stores/auth';

/** The alert pages' sections; notification channels are for admins only. */
export function AlertsTabs() {
  const { t } = useTranslation();
  const { pathname } = useLocation();
  const admin = useCan('alert.manage');
  const tabs = [
    { to: '/alerts', label: t('alerts.tabs.alerts') },
    { to: '/alerts/rules', label: t('alerts.tabs.rules') },
    { to: '/alerts/silences', label: t('alerts.tabs.silences') },
    ...(admin ? [{ to: '/alerts/channels', label: t('alerts.tabs.channels') }] : []),
  ];
  const current = tabs.some((tab) => tab.to === pathname) ? pathname : '/alerts';
  return (
    <Tabs value={current} sx={{ mb: 2, borderBottom: 1, borderColor: 'divider' }}>
      {tabs.map((tab) => (
        <Tab key={tab.to} value={tab.to} label={tab.label} component={RouterLink} to={tab.to} />
      ))}
    </Tabs>
  );
}
