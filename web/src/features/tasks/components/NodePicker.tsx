import { Autocomplete, TextField } from '@mui/material';
import { keepPreviousData, useQueries, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';

import { nodeNameQuery, nodeSearchQuery } from '@/features/tasks/api/tasks';

const NAMED = 50; // chosen nodes looked up by id to show their names; the rest show their id

/** Nodes chosen by hostname or IP; the value is their ids (as the API's target_value holds). */
export function NodePicker({
  value,
  onChange,
  label,
  helperText,
  error,
}: {
  value: string[];
  onChange: (ids: string[]) => void;
  label: string;
  helperText?: string;
  error?: boolean;
}) {
  const { t } = useTranslation();
  const [keyword, setKeyword] = useState('');
  const found = useQuery({ ...nodeSearchQuery(keyword.trim()), placeholderData: keepPreviousData });
  const chosen = useQueries({ queries: value.slice(0, NAMED).map((id) => ({ ...nodeNameQuery(Number(id)), enabled: /^\d+$/.test(id) })) });
  const names = new Map<string, string>();
  for (const node of found.data?.items ?? []) names.set(String(node.id), `${node.hostname} (${node.ip})`);
  for (const result of chosen) if (result.data) names.set(String(result.data.id), `${result.data.hostname} (${result.data.ip})`);
  const options = [...new Set([...(found.data?.items ?? []).map((node) => String(node.id))])];

  return (
    <Autocomplete
      multiple
      options={options}
      value={value}
      onChange={(_e, ids) => onChange(ids)}
      inputValue={keyword}
      onInputChange={(_e, text, reason) => {
        if (reason !== 'reset') setKeyword(text);
      }}
      filterOptions={(ids) => ids}
      getOptionLabel={(id) => names.get(id) ?? `#${id}`}
      loading={found.isFetching}
      noOptionsText={t('tasks.form.noNodes')}
      renderInput={(params) => <TextField {...params} label={label} helperText={helperText} error={error} />}
    />
  );
}
