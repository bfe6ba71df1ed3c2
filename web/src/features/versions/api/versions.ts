import { queryOptions } from '@tanstack/react-query';

import { api, unwrap, type Schemas } from '@/api/client';
import { keys } from '@/api/keys';
import { uploadWithProgress } from '@/api/upload';

export type Version = Schemas['VersionRead'];
export type Component = Version['component'];
export type DeployRequest = Schemas['DeployRequest'];
export type DeployPlan = Schemas['DeployPlan'];

// What the Manager accepts (version/schemas.py); the select boxes offer exactly these.
export const OS_CHOICES = ['linux', 'darwin', 'windows'] as const;
export const ARCH_CHOICES = ['amd64', 'arm64', 'arm', '386'] as const;

export interface VersionListParams {
  component?: Component;
  os?: string;
  arch?: string;
  page: number;
  page_size: number;
}

export const versionListQuery = (params: VersionListParams) =>
  queryOptions({
    queryKey: keys.versions(params),
    queryFn: () => unwrap(api.GET('/api/v1/versions', { params: { query: params } })),
  });

export interface UploadFields {
  component: Component;
  version: string;
  os: string;
  arch: string;
  releaseNotes: string;
  file: File;
}

/** Uploads a package; `onProgress` gets the share of the file sent so far (0..1). */
export function uploadVersion(fields: UploadFields, onProgress: (fraction: number) => void, signal?: AbortSignal) {
  const form = new FormData();
  form.set('component', fields.component);
  form.set('version', fields.version.trim());
  form.set('os', fields.os);
  form.set('arch', fields.arch);
  if (fields.releaseNotes.trim()) form.set('release_notes', fields.releaseNotes.trim());
  form.set('file', fields.file, fields.file.name);
  return uploadWithProgress<Schemas['VersionDetail']>('/api/v1/versions', form, onProgress, signal);
}

export function deleteVersion(id: number) {
  return unwrap(api.DELETE('/api/v1/versions/{id}', { params: { path: { id } } }));
}

export function deploy(body: DeployRequest) {
  return unwrap(api.POST('/api/v1/updates/deploy', { body }));
}

/** Nodes whose hostname or IP contains `keyword`, for the deploy dialog's node picker. */
export const nodeSearchQuery = (keyword: string) =>
  queryOptions({
    queryKey: keys.nodeSearch(keyword),
    queryFn: () =>
      unwrap(api.GET('/api/v1/nodes', { params: { query: { keyword: keyword || undefined, page: 1, page_size: 20 } } })),
    staleTime: 30_000,
  });
