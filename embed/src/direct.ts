// The direct placement's chat (`/w/direct.{hash}.js`): ChatKit in the tenant's page. The
// loader loads it only for a direct widget, so that framed widgets never download it.
import { startChat } from './chat';

window.kithost!.chat = startChat;
