import { useState } from 'react';
import { createBrowserRouter, RouterProvider } from 'react-router';

import { makeQueryClient } from '@/api/queryClient';
import { Providers } from '@/app/Providers';
import { routes } from '@/app/routes';

const router = createBrowserRouter(routes);

export function App() {
  const [client] = useState(makeQueryClient);
  return (
    <Providers client={client}>
      <RouterProvider router={router} />
    </Providers>
  );
}
