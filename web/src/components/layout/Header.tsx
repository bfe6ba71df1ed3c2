import AccountCircle from '@mui/icons-material/AccountCircle';
import DarkModeIcon from '@mui/icons-material/DarkMode';
import LightModeIcon from '@mui/icons-material/LightMode';
import MenuIcon from '@mui/icons-material/Menu';
import TranslateIcon from '@mui/icons-material/Translate';
import {
  AppBar,
  Box,
  IconButton,
  ListItemText,
  Menu,
  MenuItem,
  Toolbar,
  Tooltip,
  Typography,
} from '@mui/material';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate } from 'react-router';

import { api } from '@/api/client';
import { useAuthStore } from '@/stores/auth';
import { useUiStore, type Language } from '@/stores/ui';

const LANGUAGES: { code: Language; label: string }[] = [
  { code: 'zh-CN', label: '简体中文' },
  { code: 'en', label: 'English' },
];

export function Header() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const user = useAuthStore((state) => state.user);
  const { colorMode, setColorMode, setLanguage, language, toggleSidebar } = useUiStore();
  const [userMenu, setUserMenu] = useState<HTMLElement | null>(null);
  const [languageMenu, setLanguageMenu] = useState<HTMLElement | null>(null);

  async function logout() {
    setUserMenu(null);
    // Ends the session on the server too; signing out locally must not wait on it.
    await api.POST('/api/v1/auth/logout').catch(() => undefined);
    useAuthStore.getState().signOut();
    queryClient.clear();
    void navigate('/login', { replace: true });
  }

  return (
    <AppBar position="fixed" sx={{ zIndex: (theme) => theme.zIndex.drawer + 1 }}>
      <Toolbar>
        <IconButton color="inherit" edge="start" onClick={toggleSidebar} aria-label={t('header.toggleMenu')} sx={{ mr: 1 }}>
          <MenuIcon />
        </IconButton>
        <Typography variant="h6" noWrap sx={{ flexGrow: 1 }}>
          {t('app.title')}
        </Typography>
        <Tooltip title={t('header.language')}>
          <IconButton color="inherit" onClick={(e) => setLanguageMenu(e.currentTarget)} aria-label={t('header.language')}>
            <TranslateIcon />
          </IconButton>
        </Tooltip>
        <Menu anchorEl={languageMenu} open={languageMenu !== null} onClose={() => setLanguageMenu(null)}>
          {LANGUAGES.map((item) => (
            <MenuItem
              key={item.code}
              selected={item.code === language}
              lang={item.code}
              onClick={() => {
                setLanguage(item.code);
                setLanguageMenu(null);
              }}
            >
              {item.label}
            </MenuItem>
          ))}
        </Menu>
        <Tooltip title={colorMode === 'light' ? t('header.darkMode') : t('header.lightMode')}>
          <IconButton
            color="inherit"
            aria-label={colorMode === 'light' ? t('header.darkMode') : t('header.lightMode')}
            onClick={() => setColorMode(colorMode === 'light' ? 'dark' : 'light')}
          >
            {colorMode === 'light' ? <DarkModeIcon /> : <LightModeIcon />}
          </IconButton>
        </Tooltip>
        <Box>
          <IconButton color="inherit" onClick={(e) => setUserMenu(e.currentTarget)} aria-label={t('header.userMenu')}>
            <AccountCircle />
          </IconButton>
          <Menu anchorEl={userMenu} open={userMenu !== null} onClose={() => setUserMenu(null)}>
            <MenuItem disabled>
              <ListItemText
                primary={user?.username}
                secondary={user ? { admin: t('role.admin'), operator: t('role.operator'), viewer: t('role.viewer') }[user.role] : undefined}
              />
            </MenuItem>
            <MenuItem onClick={() => void logout()}>{t('header.logout')}</MenuItem>
          </Menu>
        </Box>
      </Toolbar>
    </AppBar>
  );
}
