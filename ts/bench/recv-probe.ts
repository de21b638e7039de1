// SPDX-License-Identifier: MIT
/** `uring-zc probe` section: the receive modes of this kernel (ts/recv.ts). */
import { registerProbeSection } from '../cli/probe.ts';
import { availableRecvModes } from '../recv.ts';

registerProbeSection({
  id: 'recv',
  title: 'receive modes',
  collect: (ctx) => {
    const modes = availableRecvModes(ctx.info.caps);
    return [
      ...modes.map((m) => ({
        label: m.mode,
        key: m.mode === 'zcrx-nodev' ? 'zcrxNodev' : m.mode,
        value: m.available,
        text: `${m.available ? 'yes' : 'no '}  ${m.reason}`,
      })),
      {
        label: 'available',
        key: 'available',
        value: modes.filter((m) => m.available).map((m) => m.mode).join(','),
      },
      {
        label: 'auto picks',
        key: 'auto',
        value: 'bufring',
        text: 'zcrx when an interface queue is named and usable, else bufring (zcrx-nodev only when asked)',
      },
    ];
  },
});
