/**
 * A confirmation in a native <dialog> (focus kept inside, Escape cancels): what will be done, to how
 * many jobs, before anything is sent.
 */
import { useEffect, useRef } from 'preact/hooks';

export interface ConfirmRequest {
  readonly title: string;
  readonly message: string;
  readonly confirmLabel: string;
  readonly danger?: boolean;
  readonly onConfirm: () => void;
}

export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | undefined; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (element === null) return;
    if (request !== undefined && !element.open) element.showModal();
    if (request === undefined && element.open) element.close();
  }, [request]);
  return (
    <dialog ref={dialog} aria-labelledby="confirm-title" onClose={onClose}>
      {request === undefined ? null : (
        <form
          method="dialog"
          onSubmit={(event) => {
            const submitter = (event as SubmitEvent).submitter;
            if (submitter instanceof HTMLButtonElement && submitter.value === 'confirm') request.onConfirm();
          }}
        >
          <h2 id="confirm-title">{request.title}</h2>
          <p>{request.message}</p>
          <div class="actions">
            <button type="submit" value="cancel" autofocus>
              Keep them
            </button>
            <button type="submit" value="confirm" class={request.danger === true ? 'danger' : 'primary'}>
              {request.confirmLabel}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}
