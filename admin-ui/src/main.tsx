// The dashboard's entry: the sign-in screen loads with it; every other screen is its own
// chunk, fetched when first opened.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { lazy, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createBrowserRouter } from 'react-router';
// The DOM's RouterProvider: it carries out a navigation's flushSync (see ui.tsx's useUrlState).
import { RouterProvider } from 'react-router/dom';
import { ApiError } from './api/client';
import { AcceptInvitation, SignIn } from './auth';
import { ConfirmDialog } from './confirm';
import { Home, RequireSignIn, Shell } from './shell';
import './styles.css';

const Widgets = lazy(() => import('./screens/Widgets'));
const WidgetEditor = lazy(() => import('./screens/editor/WidgetEditor'));
const Analytics = lazy(() => import('./screens/Analytics'));
const Errors = lazy(() => import('./screens/Errors'));
const Conversations = lazy(() => import('./screens/Conversations'));
const Knowledge = lazy(() => import('./screens/Knowledge'));
const Webhooks = lazy(() => import('./screens/Webhooks'));
const Team = lazy(() => import('./screens/Team'));
const Clients = lazy(() => import('./screens/Clients'));
const Audit = lazy(() => import('./screens/Audit'));
const Settings = lazy(() => import('./screens/Settings'));

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A refusal will not change by asking again; a lost connection may.
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
});

const router = createBrowserRouter(
  [
    { path: '/sign-in', element: <SignIn /> },
    { path: '/invite', element: <AcceptInvitation /> },
    {
      element: <RequireSignIn />,
      children: [
        { index: true, element: <Home /> },
        {
          path: '/t/:tenant',
          element: <Shell />,
          children: [
            { index: true, element: <Widgets /> },
            { path: 'widgets', element: <Widgets /> },
            { path: 'widgets/:id/:tab?', element: <WidgetEditor /> },
            { path: 'analytics', element: <Analytics /> },
            { path: 'errors', element: <Errors /> },
            { path: 'conversations', element: <Conversations /> },
            { path: 'knowledge', element: <Knowledge /> },
            { path: 'webhooks', element: <Webhooks /> },
            { path: 'team', element: <Team /> },
            { path: 'clients', element: <Clients /> },
            { path: 'audit', element: <Audit /> },
            { path: 'settings', element: <Settings /> },
          ],
        },
      ],
    },
  ],
  { basename: '/admin' },
);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <ConfirmDialog>
        <RouterProvider router={router} />
      </ConfirmDialog>
    </QueryClientProvider>
  </StrictMode>,
);
