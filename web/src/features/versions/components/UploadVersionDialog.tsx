import UploadFileIcon from '@mui/icons-material/UploadFile';
import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  LinearProgress,
  MenuItem,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ApiError } from '@/api/client';
import { keys } from '@/api/keys';
import { NetworkError } from '@/api/upload';
import { formatBytes } from '@/components/format';
import { ARCH_CHOICES, OS_CHOICES, uploadVersion, type Component, type Version } from '@/features/versions/api/versions';

/** An upload's error as the user should read it: the API's message and code, or why no answer came. */
function useUploadError(error: unknown): string | null {
  const { t } = useTranslation();
  if (!error) return null;
  if (error instanceof ApiError && error.status === 413) return t('versions.upload.tooLarge');
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  if (error instanceof NetworkError) return t('versions.upload.networkError');
  return t('common.saveFailed');
}

export function UploadVersionDialog({ open, onClose, onUploaded }: { open: boolean; onClose: () => void; onUploaded: (version: Version) => void }) {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [component, setComponent] = useState<Component>('agent');
  const [version, setVersion] = useState('');
  const [os, setOs] = useState<string>('linux');
  const [arch, setArch] = useState<string>('amd64');
  const [notes, setNotes] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [progress, setProgress] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const aborter = useRef<AbortController | null>(null);
  const upload = useMutation({
    mutationFn: (chosen: File) => {
      aborter.current = new AbortController();
      setProgress(0);
      return uploadVersion({ component, version, os, arch, releaseNotes: notes, file: chosen }, setProgress, aborter.current.signal);
    },
    onSuccess: async (created) => {
      await queryClient.invalidateQueries({ queryKey: keys.allVersions });
      onUploaded(created);
    },
  });
  const error = useUploadError(upload.error instanceof DOMException ? null : upload.error);

  function close() {
    aborter.current?.abort();
    onClose();
  }

  return (
    <Dialog open={open} onClose={close} fullWidth maxWidth="sm">
      <DialogTitle>{t('versions.upload.title')}</DialogTitle>
      <DialogContent sx={{ display: 'grid', gap: 2, pt: '8px !important' }}>
        {error ? (
          <Alert severity="error" data-testid="upload-error">
            {error}
          </Alert>
        ) : null}
        <Box sx={{ display: 'grid', gridTemplateColumns: '1fr 1fr', gap: 2 }}>
          <TextField select label={t('versions.component')} value={component} onChange={(e) => setComponent(e.target.value as Component)}>
            <MenuItem value="agent">agent</MenuItem>
            <MenuItem value="daemon">daemon</MenuItem>
          </TextField>
          <TextField
            label={t('versions.version')}
            value={version}
            onChange={(e) => setVersion(e.target.value)}
            helperText={t('versions.upload.versionHint')}
            required
            slotProps={{ htmlInput: { 'data-testid': 'upload-version' } }}
          />
          <TextField select label={t('versions.os')} value={os} onChange={(e) => setOs(e.target.value)}>
            {OS_CHOICES.map((choice) => (
              <MenuItem key={choice} value={choice}>
                {choice}
              </MenuItem>
            ))}
          </TextField>
          <TextField select label={t('versions.arch')} value={arch} onChange={(e) => setArch(e.target.value)}>
            {ARCH_CHOICES.map((choice) => (
              <MenuItem key={choice} value={choice}>
                {choice}
              </MenuItem>
            ))}
          </TextField>
        </Box>
        <TextField label={t('versions.notes')} value={notes} onChange={(e) => setNotes(e.target.value)} multiline minRows={3} />
        <Box sx={{ display: 'flex', alignItems: 'center', gap: 2 }}>
          <Button variant="outlined" startIcon={<UploadFileIcon />} onClick={() => input.current?.click()} disabled={upload.isPending}>
            {t('versions.upload.chooseFile')}
          </Button>
          <Typography color={file ? 'text.primary' : 'text.secondary'} data-testid="upload-file-name" sx={{ wordBreak: 'break-all' }}>
            {file ? `${file.name} (${formatBytes(file.size)})` : t('versions.upload.noFile')}
          </Typography>
          <input
            ref={input}
            type="file"
            hidden
            data-testid="upload-file"
            aria-label={t('versions.upload.chooseFile')}
            onChange={(e) => setFile(e.target.files?.[0] ?? null)}
          />
        </Box>
        {upload.isPending ? (
          <Box>
            <LinearProgress variant="determinate" value={Math.round(progress * 100)} aria-label={t('versions.upload.progress')} />
            <Typography variant="body2" color="text.secondary" data-testid="upload-progress">
              {progress >= 1 ? t('versions.upload.signing') : t('versions.upload.percent', { percent: Math.round(progress * 100) })}
            </Typography>
          </Box>
        ) : null}
      </DialogContent>
      <DialogActions>
        <Button onClick={close}>{t('common.cancel')}</Button>
        <Button variant="contained" disabled={!file || !version.trim() || upload.isPending} onClick={() => file && upload.mutate(file)}>
          {t('versions.upload.submit')}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
