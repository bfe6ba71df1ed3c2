import DashboardIcon from '@mui/icons-material/Dashboard';
import DnsIcon from '@mui/icons-material/Dns';
import AccountTreeIcon from '@mui/icons-material/AccountTree';
import InventoryIcon from '@mui/icons-material/Inventory2';
import PeopleIcon from '@mui/icons-material/People';
import HistoryIcon from '@mui/icons-material/History';
import KeyIcon from '@mui/icons-material/VpnKey';
import RocketLaunchIcon from '@mui/icons-material/RocketLaunch';
import NotificationsIcon from '@mui/icons-material/NotificationsActive';
import SettingsIcon from '@mui/icons-material/Settings';
import TerminalIcon from '@mui/icons-material/Terminal';
import { Drawer, List, ListItemButton, ListItemIcon, ListItemText, Toolbar } from '@mui/material';
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { NavLink } from 'react-router';

import { useCan } from '@/stores/auth';

export const SIDEBAR_WIDTH = 220;

function Item({ to, icon, label, end }: { to: string; icon: ReactNode; label: string; end?: boolean }) {
  return (
    <ListItemButton component={NavLink} to={to} end={end} sx={{ '&.active': { bgcolor: 'action.selected' } }}>
      <ListItemIcon>{icon}</ListItemIcon>
      <ListItemText primary={label} />
    </ListItemButton>
  );
}

export function Sidebar({ open }: { open: boolean }) {
  const { t } = useTranslation();
  const admin = useCan('user.manage');
  const audit = useCan('audit.read');
  const enrollment = useCan('enrollment.manage');
  const settings = useCan('settings.read');
  return (
    <Drawer
      variant="persistent"
      open={open}
      sx={{
        width: open ? SIDEBAR_WIDTH : 0,
        flexShrink: 0,
        '& .MuiDrawer-paper': { width: SIDEBAR_WIDTH, boxSizing: 'border-box' },
      }}
    >
      <Toolbar />
      <List component="nav" aria-label={t('nav.label')}>
        <Item to="/" end icon={<DashboardIcon />} label={t('nav.dashboard')} />
        <Item to="/nodes" icon={<DnsIcon />} label={t('nav.nodes')} />
        <Item to="/groups" icon={<AccountTreeIcon />} label={t('nav.groups')} />
        <Item to="/versions" icon={<InventoryIcon />} label={t('nav.versions')} />
        <Item to="/rollouts" icon={<RocketLaunchIcon />} label={t('nav.rollouts')} />
        <Item to="/tasks" icon={<TerminalIcon />} label={t('tasks.nav')} />
        <Item to="/alerts" icon={<NotificationsIcon />} label={t('alerts.nav')} />
        {admin ? <Item to="/users" icon={<PeopleIcon />} label={t('nav.users')} /> : null}
        {audit ? <Item to="/audit-logs" icon={<HistoryIcon />} label={t('nav.auditLogs')} /> : null}
        {enrollment ? (
          <Item to="/enrollment-tokens" icon={<KeyIcon />} label={t('nav.enrollmentTokens')} />
        ) : null}
        {settings ? <Item to="/settings" icon={<SettingsIcon />} label={t('settings.nav')} /> : null}
      </List>
    </Drawer>
  );
}
