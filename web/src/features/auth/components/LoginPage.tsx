import { Alert, Box, Button, Card, CardContent, TextField, Typography } from '@mui/material';
import { useMutation } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { Navigate, useNavigate, useSearchParams } from 'react-router';

import { ApiError } from '@/api/client';
import { login } from '@/features/auth/api/auth';
import { useAuthStore } from '@/stores/auth';

/** Only a path inside this app: `next` comes from the URL, so never an absolute address. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function LoginPage() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get('next'));
  const token = useAuthStore((state) => state.token);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const mutation = useMutation({
    mutationFn: () => login(username.trim(), password),
    onSuccess: (result) => {
      useAuthStore.getState().signIn(result.token, result.refresh_token, result.user);
      void navigate(next, { replace: true });
    },
  });

  if (token && !mutation.isPending) return <Navigate to={next} replace />;

  function submit(event: FormEvent) {
    event.preventDefault();
    mutation.mutate();
  }

  const error = mutation.error;
  let message: string | null = null;
  if (error instanceof ApiError && error.status === 401) message = t('login.invalid');
  else if (error instanceof ApiError && error.status === 429) message = t('login.rateLimited');
  else if (error) message = t('login.failed');

  return (
    <Box sx={{ minHeight: '100vh', display: 'grid', placeItems: 'center', bgcolor: 'background.default' }}>
      <Card sx={{ width: 380 }}>
        <CardContent component="form" onSubmit={submit} sx={{ display: 'grid', gap: 2, p: 4 }}>
          <Typography variant="h5" component="h1">
            {t('app.title')}
          </Typography>
          <Typography color="text.secondary">{t('login.subtitle')}</Typography>
          {message ? <Alert severity="error">{message}</Alert> : null}
          <TextField
            label={t('login.username')}
            name="username"
            autoComplete="username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            required
            autoFocus
          />
          <TextField
            label={t('login.password')}
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
          <Button type="submit" variant="contained" size="large" disabled={mutation.isPending}>
            {mutation.isPending ? t('login.signingIn') : t('login.submit')}
          </Button>
        </CardContent>
      </Card>
    </Box>
  );
}
