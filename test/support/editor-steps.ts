// Steps in the Node-RED editor (headless Chromium) that editor tests share: open a node's dialog, confirm it,
// wait for notifications, press an inject button.
import type { Page } from 'playwright-core';

export function nodeIdOfType(page: Page, type: string): Promise<string> {
  return page.evaluate((t: string) => {
    let id = '';
    (globalThis as any).RED.nodes.eachNode((n: any) => {
      if (n.type === t) id = n.id;
    });
    return id;
  }, type);
}

/** Opens a node's edit dialog, as a double-click does (a notification may cover the node itself). */
export async function openNode(page: Page, type: string): Promise<void> {
  const id = await nodeIdOfType(page, type);
  await page.evaluate((nodeId: string) => {
    const RED = (globalThis as any).RED;
    RED.editor.edit(RED.nodes.node(nodeId));
  }, id);
  await page.waitForSelector('#node-dialog-ok', { state: 'visible' });
}

/** Presses a dialog's button and waits until its tray has closed (the editor opens no other dialog meanwhile). */
export async function confirm(page: Page, button: string): Promise<void> {
  await page.click(button);
  await page.waitForSelector(button, { state: 'hidden' });
}

/** Waits until no notification (imported, deployed…) lies over the workspace. */
export function notificationsGone(page: Page): Promise<unknown> {
  return page.waitForFunction(() => (globalThis as any).$('.red-ui-notification:visible').length === 0, undefined, { timeout: 30_000 });
}

/**
 * Clicks an inject node's button until Node-RED confirms it ("Successfully injected"): on a loaded machine the
 * workspace can still be moving (sidebar switch) when the click lands.
 */
export async function pressInject(page: Page, id: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    await notificationsGone(page);
    await page.click(`g[id="${id}"] .red-ui-flow-node-button`);
    const confirmed = await page
      .waitForFunction(() => /Successfully injected/.test((globalThis as any).$('.red-ui-notification').text()), undefined, { timeout: 5_000 })
      .then(() => true, () => false);
    if (confirmed) return;
  }
  throw new Error('the inject button never confirmed an injection');
}
